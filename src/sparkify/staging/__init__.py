"""Land the raw JSON in the warehouse's staging tables: one module per warehouse behind these two calls."""

from __future__ import annotations

from datetime import date

from sparkify.lake import Lake
from sparkify.settings import Settings


def stage_events(settings: Settings, day: date, key: str | None = None) -> dict[str, object]:
    """Replace the day's rows of ``staging_events`` with the day's log file (``key``: its path in the lake)."""
    lake = Lake(settings.lake, settings.aws_conn_id)
    if settings.warehouse == "duckdb":
        from sparkify.staging import duckdb

        with duckdb.connect(settings.duckdb_path) as con:
            return duckdb.stage_events(con, lake, day, settings.raw_schema, key, settings.allowance).__dict__
    if settings.warehouse == "postgres":
        from sparkify.staging import postgres

        return postgres.stage_events(settings, lake, day, key).__dict__
    raise NotImplementedError(f"staging for warehouse {settings.warehouse!r} is not available yet")


def stage_songs(settings: Settings) -> dict[str, object]:
    """Replace ``staging_songs`` with every song file in the lake."""
    lake = Lake(settings.lake, settings.aws_conn_id)
    if settings.warehouse == "duckdb":
        from sparkify.staging import duckdb

        with duckdb.connect(settings.duckdb_path) as con:
            return duckdb.stage_songs(con, lake, settings.raw_schema, settings.allowance).__dict__
    if settings.warehouse == "postgres":
        from sparkify.staging import postgres

        return postgres.stage_songs(settings, lake).__dict__
    raise NotImplementedError(f"staging for warehouse {settings.warehouse!r} is not available yet")
