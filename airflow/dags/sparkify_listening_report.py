"""
### Sparkify listening report: each day's plays, once its marts are built

Scheduled on the marts' assets: **sparkify_daily**'s summary task emits one asset event per mart when a day's
run has built and checked them, with the day in the event's extra. For every day the triggering events name,
**report** writes the top songs, plays per hour and plays per level into `analytics.rpt_daily_listening`
(the day's rows replaced) and a PNG chart into the lake (`reports/daily_listening/YYYY/MM/YYYY-MM-DD.png`).
Declared in dbt as the exposure `daily_listening_report`, so the dbt docs' lineage reaches it.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from sparkify.alerts import on_failure
from sparkify.assets import days_of, mart_assets
from sparkify.report import build_report
from sparkify.settings import settings
from sparkify.warehouses import warehouse_for

SETTINGS = settings()
WAREHOUSE = warehouse_for(SETTINGS)
MARTS = mart_assets(SETTINGS)


@dag(
    schedule=[MARTS["fct_songplays"], MARTS["dim_songs"], MARTS["dim_artists"]],
    start_date=SETTINGS.start_datetime,
    catchup=False,
    max_active_runs=1,
    tags=["sparkify", "report", SETTINGS.warehouse],
    default_args={**SETTINGS.default_task_args(), **WAREHOUSE.task_args(), "on_failure_callback": on_failure},
    doc_md=__doc__,
)
def sparkify_listening_report() -> None:
    @task
    def report(triggering_asset_events=None) -> list[dict[str, object]]:
        days = days_of(triggering_asset_events.values())
        return [build_report(SETTINGS, pendulum.Date.fromisoformat(day)) for day in days]

    report()


sparkify_listening_report()
