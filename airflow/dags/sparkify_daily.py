"""
### Sparkify daily: raw logs to a star schema

A run covers the days of its data interval: one day on the daily schedule (the run starts when its day has
ended, at midnight UTC) and in Airflow's own backfill (the day of `ds`), any range when created with a wider
interval (`make backfill DAYS_PER_RUN=N`).

1. **days** lists the run's days; on a scheduled run, **wait_for_logs** waits for each day's event log to land
   (no worker slot held between checks; it fails after `SPARKIFY_ARRIVAL_TIMEOUT`, naming the days still
   missing); a backfill or a manual run does not wait. **stage_events** replaces each day's rows of
   `staging_events` with `log_data/YYYY/MM/YYYY-MM-DD-events.json`, one mapped task instance per day, named by
   its day (a run of more than `SPARKIFY_MAX_STAGING_TASKS` days, 31 by default, stages consecutive days per
   instance); a bad or missing file fails its day alone, the other days' loads stand;
   **stage_songs** refreshes `staging_songs` from `song_data/`, each as the configured warehouse stages data
   (on Redshift: COPY from S3 with the provider's `S3ToRedshiftOperator`; elsewhere its own bulk loader).
2. **dbt_sparkify** (Cosmos) checks each source's freshness, then builds each dbt model, followed by that
   model's tests: `stg_sparkify__events`, `stg_sparkify__songs` → `dim_users`, `dim_user_levels`,
   `dim_songs`, `dim_artists`, `fct_songplays` (the run's days deleted and re-inserted) → `dim_time`, then the monitoring
   marts `fct_daily_volumes` → `fct_daily_anomalies` (its test warns on a flagged day, never fails). One
   `dbt build` (**dbt_producer_watcher**) does the work; every model, model's tests and source has its own
   task with that node's result (a retried one runs its node itself; a cleared run builds again). A failing test stops what
   depends on it; each day's songplays are reconciled with its events.
3. **summary** logs, for each of the run's days, the rows staged and quarantined, the rows of every staging and mart table, the
   run's dbt results (kept in `landing.dbt_results` by the project's on-run-end hooks) and the day's anomaly
   flags (`analytics.fct_daily_anomalies`, warnings, not failures); records them in `landing.pipeline_audit`
   (a row per day and table); and emits one asset event per mart with the run's days, which
   `sparkify_listening_report` is scheduled on.
4. **docs** regenerates the dbt docs (lineage, every model and column) when the project or the warehouse's
   columns changed, served under *Browse → dbt docs*.

Bad input over the allowance, a missing day file and a failing data test fail their task at once; a warehouse or
a lake that does not answer is retried with back-off. A task that fails for good logs one `SPARKIFY_ALERT {json}` line (and e-mails it when `SPARKIFY_ALERT_CONN_ID`
names an SMTP connection).

A scheduled run that has not succeeded `SPARKIFY_DEADLINE` after its day ended sends one
deadline alert through the same channel.

Reruns are idempotent. The warehouse (`SPARKIFY_WAREHOUSE`) and the lake (`SPARKIFY_LAKE`) come from the
environment; see the project README and docs/operations.md.
"""

from __future__ import annotations

from datetime import date

from airflow.sdk import CronDataIntervalTimetable, chain, dag, task

from sparkify.alerts import on_failure
from sparkify.arrival import TASK_ID as WAIT_TASK_ID
from sparkify.arrival import LogArrivalSensor
from sparkify.assets import event_extra, mart_assets
from sparkify.dbt import dbt_task_group
from sparkify.dbt_run import generate_docs
from sparkify.deadline import deadline_alert
from sparkify.run_days import batches, run_days
from sparkify.settings import settings
from sparkify.summary import log_counts
from sparkify.warehouses import warehouse_for

SETTINGS = settings()
WAREHOUSE = warehouse_for(SETTINGS)
MART_ASSETS = mart_assets(SETTINGS)


@dag(
    # A run per day, started when the day has ended: its data interval is the day, and its logical date (`ds`)
    # the day's start, as in Airflow's own backfill.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    # From the settings (SPARKIFY_START_DATE, SPARKIFY_END_DATE): no last day unless one is set.
    start_date=SETTINGS.start_datetime,
    end_date=SETTINGS.end_datetime,
    catchup=False,
    max_active_runs=SETTINGS.max_active_runs,
    tags=["sparkify", "dbt", SETTINGS.warehouse],
    default_args={**SETTINGS.default_task_args(), **WAREHOUSE.task_args(), "on_failure_callback": on_failure},
    deadline=deadline_alert(SETTINGS),
    doc_md=__doc__,
)
def sparkify_daily() -> None:
    # The run's days, as the staging task instances take them (a day each, up to SPARKIFY_MAX_STAGING_TASKS).
    @task
    def days(data_interval_start=None, data_interval_end=None) -> list[list[str]]:
        days = run_days(data_interval_start, data_interval_end)
        return [[day.isoformat() for day in batch] for batch in batches(days, SETTINGS.max_staging_tasks)]

    # One asset event per mart once the run's days are built and checked, the days in its extra: what downstream
    # DAGs (sparkify_listening_report) are scheduled on. Cosmos' own per-task assets stay off (docs/performance.md).
    @task(outlets=list(MART_ASSETS.values()))
    def summary(days: list[list[str]], run_id: str | None = None, outlet_events=None) -> dict[str, int]:
        days = [day for batch in days for day in batch]
        counts = log_counts(SETTINGS, [date.fromisoformat(day) for day in days], run_id)
        for asset in MART_ASSETS.values():
            outlet_events[asset].extra = event_extra(days)
        return counts

    @task
    def docs() -> str:
        return str(generate_docs(SETTINGS, force=False))

    run = days()
    # It only reads the lake: the default pool, not the warehouse's writer pool.
    arrived = LogArrivalSensor(task_id=WAIT_TASK_ID, settings=SETTINGS, pool="default_pool")
    staged = WAREHOUSE.staging_tasks(run)  # stage_events (each of the run's days) and stage_songs
    dbt_sparkify = dbt_task_group(SETTINGS)
    chain(run, arrived, staged, dbt_sparkify, summary(run), docs())


sparkify_daily()
