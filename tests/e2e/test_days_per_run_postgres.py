"""Runs of several days through the Airflow scheduler, on PostgreSQL: the same eight generated days backfilled
seven days a run and in one run build the marts a run per day builds (the DuckDB reference, to the row), with
every day's audit rows, and the whole history passes `make check`."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from sparkify.local_airflow import running
from sparkify.settings import from_env
from sparkify.staging import postgres
from tests.conftest import MARTS, drop_database, fingerprints
from tests.e2e.conftest import (
    WEEK_AND_A_DAY,
    airflow_workspace,
    audited_days,
    built_without_airflow_at,
    make_check,
    run_in_ranges,
    week_and_a_day,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

MONITORING = ("analytics.fct_daily_volumes", "analytics.fct_daily_anomalies")


@pytest.fixture(scope="module")
def workspace(postgres_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("days-per-run-postgres")
    lake = week_and_a_day(root)
    database = f"sparkify_test_{uuid.uuid4().hex[:12]}"
    env = airflow_workspace(
        root,
        lake,
        SPARKIFY_WAREHOUSE="postgres",
        SPARKIFY_PG_DATABASE=database,
        SPARKIFY_RETRIES="1",
        SPARKIFY_RETRY_DELAY_SECONDS="3",
    )
    reference = built_without_airflow_at(root, lake, MARTS, WEEK_AND_A_DAY[-1:])[WEEK_AND_A_DAY[-1]]
    settings = from_env(env)
    postgres.ensure_database(settings)
    try:
        with running(
            settings, int(env["SPARKIFY_AIRFLOW_PORT"]), home=Path(env["AIRFLOW_HOME"]), base_env=env
        ) as airflow:
            yield {"env": env, "airflow": airflow, "reference": reference, "database": database}
    finally:
        drop_database(database)


def scenario(workspace, per_run: int) -> dict:
    # A new, empty database between scenarios (no run is active).
    drop_database(workspace["database"])
    settings = from_env(workspace["env"])
    postgres.ensure_database(settings)
    runs = run_in_ranges(workspace["airflow"], WEEK_AND_A_DAY, per_run)
    audit = audited_days(settings)
    checked = make_check(workspace["env"])
    return {
        "runs": runs,
        "marts": fingerprints(settings, MARTS),
        "monitoring": fingerprints(settings, MONITORING),
        "audit": audit,
        "checked": checked,
    }


@pytest.fixture(scope="module")
def seven_per_run(workspace):
    return scenario(workspace, 7)


@pytest.fixture(scope="module")
def one_run(workspace, seven_per_run):
    return scenario(workspace, len(WEEK_AND_A_DAY))


@pytest.mark.parametrize("mode", ["seven_per_run", "one_run"])
def test_runs_of_several_days_build_what_a_run_per_day_builds(request, workspace, mode):
    result = request.getfixturevalue(mode)
    assert {run["state"] for run in result["runs"]} == {"success"}
    assert len(result["runs"]) == {"seven_per_run": 2, "one_run": 1}[mode]
    assert result["marts"] == workspace["reference"]
    assert result["audit"] == {day: (8, 1) for day in WEEK_AND_A_DAY}
    assert result["checked"].returncode == 0, result["checked"].stdout[-4000:]


def test_the_monitoring_marts_do_not_depend_on_the_days_per_run(seven_per_run, one_run):
    assert seven_per_run["monitoring"] == one_run["monitoring"]
    assert seven_per_run["monitoring"]["analytics.fct_daily_volumes"][0] == len(WEEK_AND_A_DAY)
