"""Section 3, one day through Airflow (a real scheduler run of ``sparkify_daily``) vs. the same work done raw:
staging and one ``dbt build`` in one process, for each Cosmos execution mode and on stock Airflow and Cosmos."""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

from benchmarks.common import DAY, Row, busy_seconds, timed
from sparkify.datagen import generate
from sparkify.settings import Settings, from_env
from sparkify.warehouses import warehouse_for

# 2. One day through Airflow vs. raw -----------------------------------------------------------------------------


TASK_KINDS = (
    ("staging", lambda task_id: task_id.startswith("stage_")),
    ("dbt build", lambda task_id: task_id.endswith("dbt_producer_watcher")),
    ("dbt node tasks", lambda task_id: task_id.startswith("dbt_sparkify.")),
    ("summary", lambda task_id: task_id == "summary"),
    ("docs", lambda task_id: task_id == "docs"),
)


def run_profile(run: dict, tis: list[dict], label: str) -> str:
    """Where a run's time went, from its task instances: per kind of task, how many, the sum of their
    durations (process time, overlapping ones each counted) and how long at least one of them ran; what is left
    of the run's span when no task ran is the scheduler's and the executor's (queueing, process starts)."""
    kinds: dict[str, list[dict]] = {name: [] for name, _ in TASK_KINDS} | {"other": []}
    for ti in tis:
        kind = next((name for name, matches in TASK_KINDS if matches(ti["task_id"])), "other")
        kinds[kind].append(ti)
    span = (
        datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])
    ).total_seconds()
    lines = [
        f"**Profile: where the run's time goes, {label}** (task instances of the run; span {span:.1f} s)",
        "",
        "| tasks | count | sum of durations | at least one running |",
        "| --- | --- | --- | --- |",
    ]
    for name, group in kinds.items():
        if group:
            total = sum(ti.get("duration") or 0.0 for ti in group)
            lines.append(f"| {name} | {len(group)} | {total:.1f} s | {busy_seconds(group):.1f} s |")
    idle = span - busy_seconds(tis)
    lines.append(f"| none running (scheduling, queueing, process starts) | | | {idle:.1f} s |")
    return "\n".join(lines)


# How the day runs through Airflow: the environment, and the label of its row.
EXECUTIONS = {
    "local": (
        {"SPARKIFY_DBT_EXECUTION": "local"},
        "Cosmos LOCAL, dbt runner in process, a dbt command per task",
    ),
    "watcher": (
        {"SPARKIFY_DBT_EXECUTION": "watcher"},
        "Cosmos WATCHER (default), one dbt build, a sensor task per node",
    ),
    # What managed Airflow runs: the stock LocalExecutor, no patch of sparkify.tuning.
    "stock": (
        {
            "SPARKIFY_DBT_EXECUTION": "watcher",
            "SPARKIFY_TUNING": "off",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        },
        "Cosmos WATCHER on stock Airflow and Cosmos (SPARKIFY_TUNING=off, the stock LocalExecutor)",
    ),
}


def one_day(
    settings: Settings, work: Path, env: dict[str, str], executions: list[str], profiles: list[str]
) -> list[Row]:
    from sparkify.dbt_run import DAG_DBT_FLAGS, run_dbt
    from sparkify.local_airflow import free_port, running

    lake = generate(work / "day-lake", scale=1, seed=42, days=1).root
    day_env = {**env, "SPARKIFY_LAKE": str(lake), "SPARKIFY_WAREHOUSE": "duckdb"}

    raw_settings = from_env({**day_env, "SPARKIFY_DUCKDB_PATH": str(work / "direct.duckdb")})

    def raw() -> None:
        warehouse_for(raw_settings).stage_songs()
        warehouse_for(raw_settings).stage_events(DAY)
        # The DAG's dbt environment: its day, and its flags (no unit tests).
        os.environ.update({**DAG_DBT_FLAGS, "SPARKIFY_RUN_DATE": DAY.isoformat()})
        try:
            run_dbt(raw_settings, "build", "--target-path", str(work / "raw-target"))
        finally:
            for key in (*DAG_DBT_FLAGS, "SPARKIFY_RUN_DATE"):
                os.environ.pop(key, None)

    raw_seconds = timed(raw)
    rows = [
        Row("One day", "raw: staging + one dbt build, one process", f"{raw_seconds:.1f} s", "DuckDB, scale 1")
    ]
    for execution in executions:
        airflow_env = {
            **day_env,
            "SPARKIFY_DUCKDB_PATH": str(work / f"through_airflow_{execution}.duckdb"),
            "SPARKIFY_DBT_DOCS_DIR": str(work / "dbt_docs"),
            "SPARKIFY_RETRIES": "0",
            **EXECUTIONS[execution][0],
        }
        airflow_settings = from_env(airflow_env)
        home = work / f"airflow-{execution}"
        with running(
            airflow_settings, free_port(), home=home, base_env=airflow_env, scheduler_after_backfill=True
        ) as airflow:
            start = time.perf_counter()
            airflow.create_backfill(DAY.isoformat(), DAY.isoformat(), 1)
            [run] = airflow.wait_until(
                "the day's run",
                lambda airflow=airflow: airflow.finished_runs(DAY.isoformat(), DAY.isoformat(), 1),
                timeout=1800,
                interval=0.5,
            )
            airflow_seconds = time.perf_counter() - start
            tis = airflow.task_instances(run["dag_run_id"])
            tasks = len(tis)
        profiles.append(run_profile(run, tis, EXECUTIONS[execution][1]))
        # The run alone, from its start to its end: the scheduler's start (and its dbt warm-up) left out.
        run_seconds = (
            datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])
        ).total_seconds()
        rows.append(
            Row(
                "One day",
                f"through Airflow, {EXECUTIONS[execution][1]} ({tasks} tasks, run {run['state']})",
                f"{airflow_seconds:.1f} s",
                f"{airflow_seconds / raw_seconds:.1f}x the raw run (target 1.5x); backfill created to run "
                f"finished (the run alone: {run_seconds:.1f} s, {run_seconds / raw_seconds:.1f}x)",
            )
        )
    return rows
