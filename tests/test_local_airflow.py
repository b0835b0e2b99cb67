"""Stopping the local Airflow leaves no process behind, even one in a process group of its own."""

from __future__ import annotations

import subprocess
import time

import psutil
import pytest

from sparkify.local_airflow import LocalAirflow
from sparkify.settings import from_env


def test_stop_kills_a_descendant_in_its_own_process_group(tmp_path):
    # Like a hung task: started by a component, in a group of its own, deaf to SIGTERM.
    pid_file = tmp_path / "task.pid"
    script = f"setsid bash -c 'trap \"\" TERM; echo $$ > {pid_file}; exec sleep 600' & wait"
    component = subprocess.Popen(["bash", "-c", script], start_new_session=True)
    airflow = LocalAirflow(from_env({}), tmp_path, 0, env={}, processes={"scheduler": component})
    deadline = time.monotonic() + 10
    while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    task = psutil.Process(int(pid_file.read_text()))
    assert task.is_running() and task.pid in {
        child.pid for child in psutil.Process(component.pid).children(True)
    }
    airflow.stop(timeout=2)
    assert component.poll() is not None
    assert not task.is_running() or task.status() == psutil.STATUS_ZOMBIE


def test_airflow_reads_the_local_scheduling_settings(tmp_path):
    """The settings the local Airflow is tuned with reach Airflow under the names it reads (a misspelled
    variable would be ignored without a word); a value the user sets wins."""
    import os
    import sys

    from sparkify.local_airflow import airflow_env

    settings = from_env({})
    base = {**os.environ, "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5"}
    env = airflow_env(settings, tmp_path / "home", 8080, base)
    code = (
        "from airflow.configuration import conf; "
        "print(conf.getint('workers', 'min_heartbeat_interval'), "
        "conf.getfloat('scheduler', 'scheduler_idle_sleep_time'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["1", "0.5"]


def test_a_busy_metadata_database_is_asked_again_and_a_real_error_is_not(monkeypatch):
    import httpx

    monkeypatch.setattr("time.sleep", lambda _: None)

    def failing(status: int, times: int):
        calls = []

        def request():
            calls.append(1)
            if len(calls) <= times:
                response = httpx.Response(
                    status, request=httpx.Request("PUT", "http://api/backfills/1/cancel")
                )
                raise httpx.HTTPStatusError("busy", request=response.request, response=response)
            return "done"

        return request, calls

    request, calls = failing(500, 2)
    assert LocalAirflow.while_busy(request) == "done" and len(calls) == 3
    request, calls = failing(404, 1)
    with pytest.raises(httpx.HTTPStatusError):
        LocalAirflow.while_busy(request)
    assert len(calls) == 1


def test_the_local_schedule_ends_with_the_local_lake(tmp_path, small_lake):
    """Unpausing the DAG (every backfill does) never schedules a day a local lake cannot hold, such as
    yesterday; a last day the user sets wins, and an S3 lake leaves the schedule open."""
    import os

    from sparkify.local_airflow import airflow_env

    base = {k: v for k, v in os.environ.items() if k != "SPARKIFY_END_DATE"}
    local = from_env({"SPARKIFY_LAKE": str(small_lake.root)})
    assert (
        airflow_env(local, tmp_path / "a", 8080, base)["SPARKIFY_END_DATE"] == small_lake.days[-1].isoformat()
    )
    chosen = from_env({"SPARKIFY_LAKE": str(small_lake.root), "SPARKIFY_END_DATE": "2018-11-02"})
    assert (
        airflow_env(chosen, tmp_path / "b", 8080, {**base, "SPARKIFY_END_DATE": "2018-11-02"})[
            "SPARKIFY_END_DATE"
        ]
        == "2018-11-02"
    )
    remote = from_env({"SPARKIFY_LAKE": "s3://bucket/lake"})
    assert "SPARKIFY_END_DATE" not in airflow_env(remote, tmp_path / "c", 8080, base)


def test_a_new_home_starts_from_the_database_prepared_before(tmp_path):
    """The first home is migrated and gets its pool through Airflow's CLI; the next starts from a copy of that
    database, without a process: the same tables, migration and pool."""
    import os
    import sqlite3
    import uuid

    from sparkify.local_airflow import airflow_cli, airflow_env
    from tests.conftest import REPO

    # A pool of its own: a template no other test or home shares.
    pool = f"sparkify_test_{uuid.uuid4().hex[:8]}"
    settings = from_env({"SPARKIFY_HOME": str(REPO), "SPARKIFY_DUCKDB_POOL": pool})

    def prepared(name: str) -> LocalAirflow:
        home = tmp_path / name
        home.mkdir()
        airflow = LocalAirflow(settings, home, 0, env=airflow_env(settings, home, 8080, dict(os.environ)))
        airflow.prepare()
        return airflow

    first = prepared("first")
    [template] = (REPO / ".local" / "cache").glob(f"airflow-*-{pool}.db")
    started = time.monotonic()
    second = prepared("second")
    assert time.monotonic() - started < 1, "the second home was migrated again"

    def described(airflow: LocalAirflow) -> tuple:
        with sqlite3.connect(airflow.home / "airflow.db") as con:
            return (
                con.execute("select version_num from alembic_version").fetchall(),
                con.execute("select pool, slots from slot_pool order by pool").fetchall(),
                con.execute("select count(*) from sqlite_master where type = 'table'").fetchone(),
            )

    assert described(second) == described(first)
    assert (pool, 1) in described(second)[1]
    # Airflow itself finds it migrated and the pool there.
    try:
        assert pool in airflow_cli(second.env, "pools", "list", "-o", "plain").stdout
        assert airflow_cli(second.env, "db", "check-migrations", "-t", "0").returncode == 0
    finally:
        template.unlink()
