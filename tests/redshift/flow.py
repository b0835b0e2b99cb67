"""One run of sparkify_daily on Redshift (one day or several), run by the project's own code against the stand-in
(``shim``): the DAG's staging tasks rendered by Airflow and executed through the provider's hook (``stage_events``
once per day, as the mapped task's instances run), dbt through dbt-redshift (source freshness, then ``dbt build``
with unit and data tests, over the run's days), the summary task, the docs generation and ``make sql``.
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
from sparkify.dbt_run import RUN_DATE_ENV, RUN_END_DATE_ENV, RUN_ID_ENV, generate_docs, run_dbt
from sparkify.settings import Settings
from tests.conftest import REPO, reader_of
from tests.redshift.shim import RedshiftOnPostgres, Statement

STAGING_TASKS = ("prepare", "stage_events", "stage_songs.copy", "stage_songs.publish")
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
    """What one run sent, statement by statement, and what its tasks returned (``day``: its days, as
    ``2018-11-02`` or ``2018-11-02..2018-11-04``)."""

    day: str
    statements: list[Statement]
    results: dict[str, Any]


def _context(task: Any, days: tuple[str, ...]) -> dict[str, Any]:
    logical_date = pendulum.parse(days[0])
    return {
        "ds": days[0],
        "ds_nodash": days[0].replace("-", ""),
        "logical_date": logical_date,
        "data_interval_start": logical_date,
        "data_interval_end": pendulum.parse(days[-1]).add(days=1),
        "run_id": run_id(days),
        "params": task.params,
        "task": task,
    }


def run_id(days: tuple[str, ...]) -> str:
    return f"scheduled__{days[0]}" if len(days) == 1 else f"range__{days[0]}_{days[-1]}"


def parse_dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    dagbag = DagBag(dag_folder=str(REPO / "airflow" / "dags"))
    assert dagbag.import_errors == {}
    return dagbag.dags["sparkify_daily"]


def run_task(shim: RedshiftOnPostgres, task_id: str, day: str, days: tuple[str, ...] | None = None) -> Any:
    """One staging task as a worker runs it: a fresh copy of the DAG, the task (``stage_events``: its instance
    for ``day``), its fields rendered for the run of ``days`` (default: ``day`` alone), then executed."""
    task = parse_dag().get_task(task_id)
    if task_id == "stage_events":
        task = task.unmap({"days": [day]})
    context = _context(task, days or (day,))
    shim.recorder.origin = task_id
    task.render_template_fields(context)
    return task.execute(context)


def run_day(
    shim: RedshiftOnPostgres, settings: Settings, days: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> Day:
    """Every statement of one run over ``days``, in the DAG's order."""
    first = len(shim.recorder.statements)
    results: dict[str, Any] = {}
    for task_id in STAGING_TASKS:
        if task_id == "stage_events":
            for day in days:
                results[f"stage_events[{day}]"] = run_task(shim, task_id, day, days)
        else:
            results[task_id] = run_task(shim, task_id, days[0], days)
    monkeypatch.setenv(RUN_DATE_ENV, days[0])
    monkeypatch.setenv(RUN_END_DATE_ENV, days[-1])
    monkeypatch.setenv(RUN_ID_ENV, run_id(days))
    shim.recorder.origin = "dbt source freshness"
    run_dbt(settings, "source", "freshness")
    shim.recorder.origin = "dbt build"
    results["dbt build"] = run_dbt(settings, "build")
    for name in (RUN_DATE_ENV, RUN_END_DATE_ENV, RUN_ID_ENV):
        monkeypatch.delenv(name)
    shim.recorder.origin = "summary"
    results["summary"] = summary.log_counts(
        settings, [pendulum.Date.fromisoformat(day) for day in days], run_id(days)
    )
    shim.recorder.origin = "docs"
    generate_docs(settings, force=False)
    shim.recorder.origin = "make sql"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["sql", SQL_QUERY]) == 0
    results["make sql"] = out.getvalue()
    return Day("..".join(dict.fromkeys((days[0], days[-1]))), shim.recorder.statements[first:], results)
