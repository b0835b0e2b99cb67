"""Section 5, ``make demo``'s backfill, November at scale 1, measured whole (the scale section's run at scale 1 when
it ran too)."""

from __future__ import annotations

from benchmarks.common import Row, days_label
from benchmarks.scale import ScaleResult


def demo_rows(result: ScaleResult) -> list[Row]:
    """The backfill `make demo` runs (November at scale 1), measured whole rather than projected."""
    return [
        Row(
            "Demo",
            f"{days_label(result.days)} at scale {result.scale} through the scheduler (runs {result.state})",
            f"{result.wall / 60:.1f} min",
            f"{result.wall:.0f} s from the backfill created to its last run finished, {result.wall / result.days:.1f} s "
            f"a day (target 5 min); peak RSS {result.peak_rss / 2**30:.2f} GiB",
        )
    ]
