"""Land the raw JSON in the warehouse's staging tables: one module per warehouse behind these two calls."""

from __future__ import annotations

from datetime import date

from sparkify.lake import Lake
from sparkify.settings import Settings


def stage_events(settings: Settings, day: date, key: str | None = None) -> dict[str, object]:
    """Replace the day's rows of ``staging_events`` with the day's log file (``key``: its path in the lake)."""
    if settings.warehouse == "duckdb":
        from sparkify.staging import duckdb

        with duckdb.connect(settings.duckdb_path) as con:
            result = duckdb.stage_events(con, Lake(settings.lake), day, settings.raw_schema, key)
        return result.__dict__
    raise NotImplementedError(f"staging for warehouse {settings.warehouse!r} is not available yet")


def stage_songs(settings: Settings) -> dict[str, object]:
    """Replace ``staging_songs`` with every song file in the lake."""
    if settings.warehouse == "duckdb":
        from sparkify.staging import duckdb

        with duckdb.connect(settings.duckdb_path) as con:
            result = duckdb.stage_songs(con, Lake(settings.lake), settings.raw_schema)
        return result.__dict__
    raise NotImplementedError(f"staging for warehouse {settings.warehouse!r} is not available yet")
