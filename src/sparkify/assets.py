"""The Airflow assets of the pipeline: one per mart and warehouse, updated by the daily DAG's summary task once a
run has built and checked them. The event's extra names the run's days (``{"day": "YYYY-MM-DD", "days": [...]}``,
``day`` the first of them), so a downstream DAG knows which days are new.

The warehouse is in the name as well as the URI: Airflow identifies an asset by both, and of two assets that share
a name only one stays active. One Airflow deployment that runs the pipeline on DuckDB, then on PostgreSQL, then on
DuckDB again keeps every warehouse's marts as assets of their own, each active while a DAG refers to it."""

from __future__ import annotations

from airflow.sdk import Asset

from sparkify.settings import Settings
from sparkify.summary import MART_SCHEMA, MARTS


def mart_assets(settings: Settings) -> dict[str, Asset]:
    """Each mart's asset, by mart name."""
    return {
        mart: Asset(
            name=f"sparkify.{settings.warehouse}.{MART_SCHEMA}.{mart}",
            uri=f"sparkify://{settings.warehouse}/{MART_SCHEMA}/{mart}",
            group="sparkify",
        )
        for mart in MARTS
    }


def event_extra(days: list[str]) -> dict[str, object]:
    """The extra of a run's asset events: its days, and the first of them as ``day``."""
    return {"day": days[0], "days": list(days)}


def days_of(events: object) -> list[str]:
    """The days named by asset events (a DAG run's ``triggering_asset_events`` values), sorted, each once."""
    return sorted(
        {
            day
            for asset_events in events
            for event in asset_events
            for day in event.extra.get("days", [event.extra["day"]] if "day" in event.extra else [])
        }
    )
