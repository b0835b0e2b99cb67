"""Row counts of a run: what was staged for the day, what the marts hold."""

from __future__ import annotations

import logging
from datetime import date

from sparkify import warehouse
from sparkify.settings import Settings
from sparkify.staging import schema

log = logging.getLogger(__name__)

MART_SCHEMA = "analytics"
MARTS = ("fct_songplays", "dim_users", "dim_user_levels", "dim_songs", "dim_artists", "dim_time")


def table_counts(settings: Settings, day: date | None = None) -> dict[str, int]:
    """Rows per staging and mart table; with ``day``, also the day's staged events and songplays."""
    queries = {
        f"{settings.raw_schema}.{schema.EVENTS.name}": f"select count(*) from {settings.raw_schema}.{schema.EVENTS.name}",
        f"{settings.raw_schema}.{schema.SONGS.name}": f"select count(*) from {settings.raw_schema}.{schema.SONGS.name}",
    }
    queries |= {f"{MART_SCHEMA}.{mart}": f"select count(*) from {MART_SCHEMA}.{mart}" for mart in MARTS}
    if day is not None:
        iso = day.isoformat()
        queries["day.staged_events"] = (
            f"select count(*) from {settings.raw_schema}.{schema.EVENTS.name} where log_date = date '{iso}'"
        )
        # Distinct events: a line logged twice is one play.
        queries["day.staged_nextsong"] = (
            f"select count(*) from (select distinct sessionid, iteminsession from "
            f"{settings.raw_schema}.{schema.EVENTS.name} where log_date = date '{iso}' and page = 'NextSong') as plays"
        )
        queries["day.songplays"] = (
            f"select count(*) from {MART_SCHEMA}.fct_songplays where log_date = date '{iso}'"
        )
    counts = {}
    with warehouse.cursor(settings) as cur:
        for name, sql in queries.items():
            cur.execute(sql)
            counts[name] = cur.fetchone()[0]
    return counts


def log_counts(settings: Settings, day: date) -> dict[str, int]:
    """Log the run's counts, one line per table, and return them (the summary task's XCom)."""
    counts = table_counts(settings, day)
    width = max(len(name) for name in counts)
    for name, rows in counts.items():
        log.info("%s %12d", name.ljust(width), rows)
    if counts["day.staged_nextsong"] != counts["day.songplays"]:
        log.warning(
            "day %s: %d NextSong events staged but %d songplays loaded",
            day,
            counts["day.staged_nextsong"],
            counts["day.songplays"],
        )
    return counts


def query(settings: Settings, sql: str) -> tuple[list[str], list[tuple[object, ...]]]:
    """Run one read-only query on the warehouse: column names and rows."""
    with warehouse.cursor(settings) as cur:
        cur.execute(sql)
        return [column[0] for column in cur.description], cur.fetchall()


def format_table(columns: list[str], rows: list[tuple[object, ...]]) -> str:
    cells = [columns, *[["" if value is None else str(value) for value in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)
