"""Runs of several days through the Airflow scheduler, on DuckDB: the same eight generated days backfilled seven
days a run and in one run build the marts a run per day builds; every day gets its audit rows and its report;
a bad file on one day of a seven-day run fails that day's staging alone, builds nothing, names the day, and
clearing that day once the file is fixed completes the run. (PostgreSQL: test_days_per_run_postgres.py.)"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from sparkify.local_airflow import running
from sparkify.settings import from_env
from sparkify.task_errors import first_error_line, task_log_request
from sparkify.warehouses import warehouse_for
from tests.conftest import MARTS, fingerprints
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
TABLES = MARTS + MONITORING
BAD_DAY = "2018-11-03"


def reset(workspace) -> None:
    """A new, empty warehouse between scenarios (no run is active)."""
    for path in workspace["root"].glob("warehouse.duckdb*"):
        path.unlink()


def scenario(workspace, per_run: int) -> dict:
    reset(workspace)
    started = datetime.now(UTC)
    runs = run_in_ranges(workspace["airflow"], WEEK_AND_A_DAY, per_run)
    reports = workspace["airflow"].wait_reports_done(since=started)
    settings = from_env(workspace["env"])
    audit = audited_days(settings)
    with warehouse_for(settings).cursor() as cur:
        cur.execute("select distinct report_date from analytics.rpt_daily_listening")
        reported = sorted(day.isoformat() for (day,) in cur.fetchall())
    checked = make_check(workspace["env"])
    return {
        "runs": runs,
        "marts": fingerprints(settings, TABLES),
        "audit": audit,
        "reports": reports,
        "reported": reported,
        "checked": checked,
    }


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("days-per-run")
    lake = week_and_a_day(root)
    env = airflow_workspace(root, lake, SPARKIFY_RETRIES="1", SPARKIFY_RETRY_DELAY_SECONDS="3")
    reference = built_without_airflow_at(root, lake, TABLES, (WEEK_AND_A_DAY[6], WEEK_AND_A_DAY[-1]))
    with running(
        from_env(env), int(env["SPARKIFY_AIRFLOW_PORT"]), home=Path(env["AIRFLOW_HOME"]), base_env=env
    ) as airflow:
        yield {"root": root, "lake": lake, "env": env, "airflow": airflow, "reference": reference}


@pytest.fixture(scope="module")
def seven_per_run(workspace):
    return scenario(workspace, 7)


@pytest.fixture(scope="module")
def one_run(workspace, seven_per_run):
    return scenario(workspace, len(WEEK_AND_A_DAY))


def test_seven_days_a_run_build_what_a_run_per_day_builds(workspace, seven_per_run):
    assert [run["state"] for run in seven_per_run["runs"]] == ["success", "success"]
    assert seven_per_run["marts"] == workspace["reference"][WEEK_AND_A_DAY[-1]]


def test_one_run_builds_what_a_run_per_day_builds(workspace, one_run):
    assert [run["state"] for run in one_run["runs"]] == ["success"]
    assert one_run["marts"] == workspace["reference"][WEEK_AND_A_DAY[-1]]


@pytest.mark.parametrize("mode", ["seven_per_run", "one_run"])
def test_every_day_has_its_audit_rows_and_the_history_passes_make_check(request, mode):
    result = request.getfixturevalue(mode)
    runs = len(result["runs"])
    # Eight tables' rows per day, under the run that covered it.
    assert result["audit"] == {day: (8, 1) for day in WEEK_AND_A_DAY}
    assert len({run["dag_run_id"] for run in result["runs"]}) == runs
    # The listening report, started by the runs' asset events, built every day they listed.
    assert result["reported"] == list(WEEK_AND_A_DAY)
    assert {run["state"] for run in result["reports"]} == {"success"}
    assert result["checked"].returncode == 0, result["checked"].stdout[-4000:]


def test_each_day_of_a_run_is_a_staging_task_of_its_own(workspace, one_run):
    run_id = one_run["runs"][0]["dag_run_id"]
    staged = [ti for ti in workspace["airflow"].task_instances(run_id) if ti["task_id"] == "stage_events"]
    assert sorted(ti["rendered_map_index"] for ti in staged) == list(WEEK_AND_A_DAY)
    assert {ti["state"] for ti in staged} == {"success"}


@pytest.fixture(scope="module")
def bad_day(workspace, one_run):
    """A seven-day run whose third day's file is mostly not JSON: that day's staging fails, nothing is built."""
    reset(workspace)
    log = workspace["lake"] / "log_data" / "2018" / "11" / f"{BAD_DAY}-events.json"
    good = log.read_text()
    log.write_text("not json\n" * 50 + good)
    airflow = workspace["airflow"]
    run = airflow.create_range_run(date(2018, 11, 1), date(2018, 11, 7))
    finished = airflow.wait_runs_finished("2018-11-01", "2018-11-01", 1, timeout=600)[0]
    tasks = airflow.task_instances(run["dag_run_id"])
    return {"run": run, "finished": finished, "tasks": tasks, "log": log, "good": good}


def test_a_bad_file_fails_its_day_alone_and_nothing_is_built(workspace, bad_day):
    assert bad_day["finished"]["state"] == "failed"
    staged = {ti["rendered_map_index"]: ti for ti in bad_day["tasks"] if ti["task_id"] == "stage_events"}
    assert {day: ti["state"] for day, ti in staged.items()} == {
        day: "failed" if day == BAD_DAY else "success" for day in WEEK_AND_A_DAY[:7]
    }
    # Bad input is not retried; its error names the day's file.
    failed = staged[BAD_DAY]
    assert failed["try_number"] == 1
    path, params = task_log_request(
        "sparkify_daily", bad_day["run"]["dag_run_id"], "stage_events", 1, failed["map_index"]
    )
    log = workspace["airflow"].api("GET", path, params=params, headers={"Accept": "application/json"})
    assert f"log_data/2018/11/{BAD_DAY}-events.json: 50 of" in first_error_line(log)
    built = {
        ti["task_id"]: ti["state"] for ti in bad_day["tasks"] if ti["task_id"].startswith("dbt_sparkify.")
    }
    assert built["dbt_sparkify.dbt_producer_watcher"] == "upstream_failed"
    assert "success" not in built.values()


def test_clearing_the_fixed_day_completes_the_run(workspace, bad_day):
    airflow = workspace["airflow"]
    bad_day["log"].write_text(bad_day["good"])
    run_id = bad_day["run"]["dag_run_id"]
    index = next(
        ti["map_index"]
        for ti in bad_day["tasks"]
        if ti["task_id"] == "stage_events" and ti["rendered_map_index"] == BAD_DAY
    )
    cleared_at = datetime.now(UTC)
    airflow.api(
        "POST",
        "/dags/sparkify_daily/clearTaskInstances",
        json={
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": [["stage_events", index]],
            "include_downstream": True,
            "include_upstream": False,
            "only_failed": False,
            "reset_dag_runs": True,
        },
    )
    run = airflow.wait_until(
        "the cleared run to succeed",
        lambda: (r := airflow.runs("2018-11-01", "2018-11-01")[0])["state"] in {"success", "failed"} and r,
        timeout=600,
        interval=2,
        describe=lambda: airflow.describe_runs("2018-11-01", "2018-11-01"),
    )
    assert run["state"] == "success"
    tasks = airflow.task_instances(run_id)
    # Only the fixed day was staged again.
    tries = {ti["rendered_map_index"]: ti["try_number"] for ti in tasks if ti["task_id"] == "stage_events"}
    assert tries == {day: 2 if day == BAD_DAY else 1 for day in WEEK_AND_A_DAY[:7]}
    # The listening report the run's asset events start writes the file too: read it once that is done.
    airflow.wait_reports_done(since=cleared_at)
    assert fingerprints(from_env(workspace["env"]), TABLES) == workspace["reference"][WEEK_AND_A_DAY[6]]
