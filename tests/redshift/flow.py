"""One day of sparkify_daily on Redshift, run by the project's own code against the stand-in (``shim``): the DAG's
staging tasks rendered by Airflow and executed through the provider's hook, dbt through dbt-redshift (source
freshness, then ``dbt build`` with unit and data tests), the summary task, the docs generation and ``make sql``.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pendulum
import pytest

from sparkify import cli, summary
from sparkify.dbt_run import RUN_DATE_ENV, RUN_ID_ENV, generate_docs, run_dbt
from sparkify.settings import Settings
from tests.conftest import REPO, reader_of
from tests.redshift.shim import RedshiftOnPostgres, Statement

STAGING_TASKS = (
    "stage_events.prepare",
    "stage_events.copy",
    "stage_events.publish",
    "stage_songs.copy",
    "stage_songs.publish",
)
SQL_QUERY = "select level, count(*) as plays from analytics.fct_songplays group by level order by level"


def redshift_env(lake: str, pg_database: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a Redshift deployment, its connections as Airflow reads them."""
    connection = {
        "conn_type": "redshift",
        "host": "sparkify.example.invalid",
        "port": 5439,
        "login": "sparkify",
        "password": "stand-in",
        "schema": pg_database,
    }
    return {
        "SPARKIFY_HOME": str(REPO),
        "SPARKIFY_WAREHOUSE": "redshift",
        "SPARKIFY_LAKE": lake,
        "SPARKIFY_DBT_DOCS_DIR": str(tmp_path / "dbt_docs"),
        "AIRFLOW_CONN_REDSHIFT_DEFAULT": json.dumps(connection),
        # `make sql`'s login: one of the PostgreSQL server behind the stand-in, created by the project's code.
        "AIRFLOW_CONN_REDSHIFT_READER": json.dumps(
            {**connection, "login": reader_of(pg_database), "password": "stand-in-reader"}
        ),
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "DBT_TARGET_PATH": str(tmp_path / "dbt-target"),
        "DBT_LOG_PATH": str(tmp_path / "dbt-logs"),
    }


@dataclass
class Day:
    """What one day's run sent, statement by statement, and what its tasks returned."""

    day: str
    statements: list[Statement]
    results: dict[str, Any]


def _context(task: Any, day: str) -> dict[str, Any]:
    logical_date = pendulum.parse(day)
    return {
        "ds": day,
        "ds_nodash": day.replace("-", ""),
        "logical_date": logical_date,
        "data_interval_start": logical_date,
        "data_interval_end": logical_date.add(days=1),
        "run_id": f"scheduled__{day}T00:00:00+00:00",
        "params": task.params,
        "task": task,
    }


def parse_dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    dagbag = DagBag(dag_folder=str(REPO / "airflow" / "dags"))
    assert dagbag.import_errors == {}
    return dagbag.dags["sparkify_daily"]


def run_task(shim: RedshiftOnPostgres, task_id: str, day: str) -> Any:
    """One staging task as a worker runs it: a fresh copy of the DAG, its fields rendered for the day, then
    executed."""
    task = parse_dag().get_task(task_id)
    context = _context(task, day)
    shim.recorder.origin = task_id
    task.render_template_fields(context)
    return task.execute(context)


def run_day(shim: RedshiftOnPostgres, settings: Settings, day: str, monkeypatch: pytest.MonkeyPatch) -> Day:
    """Every statement of one day's run, in the DAG's order."""
    first = len(shim.recorder.statements)
    results: dict[str, Any] = {}
    for task_id in STAGING_TASKS:
        results[task_id] = run_task(shim, task_id, day)
    monkeypatch.setenv(RUN_DATE_ENV, day)
    monkeypatch.setenv(RUN_ID_ENV, f"scheduled__{day}")
    shim.recorder.origin = "dbt source freshness"
    run_dbt(settings, "source", "freshness")
    shim.recorder.origin = "dbt build"
    results["dbt build"] = run_dbt(settings, "build")
    monkeypatch.delenv(RUN_DATE_ENV)
    monkeypatch.delenv(RUN_ID_ENV)
    shim.recorder.origin = "summary"
    results["summary"] = summary.log_counts(settings, pendulum.Date.fromisoformat(day), f"scheduled__{day}")
    shim.recorder.origin = "docs"
    generate_docs(settings, force=False)
    shim.recorder.origin = "make sql"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["sql", SQL_QUERY]) == 0
    results["make sql"] = out.getvalue()
    return Day(day, shim.recorder.statements[first:], results)
