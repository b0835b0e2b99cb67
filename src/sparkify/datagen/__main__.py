"""Command line: ``python -m sparkify.datagen --scale 1 --seed 42 --out .local/lake``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sparkify.datagen.generate import DAYS_IN_MONTH, generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sparkify.datagen",
        description=(
            "Write a Sparkify lake (song_data/ and log_data/ for November 2018) with the real data's layout and "
            "field types. Scale 1 is about 8,000 events, 100 users and 400 song files; every count grows "
            "linearly with --scale. The same seed always writes the same files."
        ),
    )
    parser.add_argument("--scale", type=int, default=1, help="size multiplier (default: 1)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    parser.add_argument(
        "--days", type=int, default=DAYS_IN_MONTH, help="days of logs from 2018-11-01 (default: 30)"
    )
    parser.add_argument("--out", type=Path, required=True, help="lake directory to write")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    lake = generate(args.out, scale=args.scale, seed=args.seed, days=args.days)
    print(
        f"wrote {lake.song_files} song files and {lake.events} events over {len(lake.days)} days "
        f"to {lake.root} in {time.perf_counter() - started:.1f}s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
