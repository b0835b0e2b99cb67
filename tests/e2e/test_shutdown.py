"""SIGTERM to `make backfill` mid-run (as `timeout`, a CI job's end, a supervisor or `docker stop` sends it, to
make alone), with a run per day and with runs of several days (`DAYS_PER_RUN=all`): every process the command
started stops, the port and the DuckDB file are free, and the next `make backfill` of the same days completes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time

import duckdb
import psutil
import pytest

from sparkify.datagen import generate
from sparkify.local_airflow import free_port, port_in_use
from tests.conftest import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

# One day: the signal comes while its run is running, and the next backfill runs it again.
START = END = "2018-11-01"


def started_by(home: str) -> list[psutil.Process]:
    """The live processes running with this AIRFLOW_HOME: every Airflow process a command of the project started."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("AIRFLOW_HOME") == home and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.Error:
            continue
    return found


def make_backfill(env: dict[str, str], log, days_per_run: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            "make",
            "--no-print-directory",
            "backfill",
            f"START={START}",
            f"END={END}",
            f"DAYS_PER_RUN={days_per_run}",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # make alone gets the signal, not a terminal's whole group
    )


def wait_for(path, text: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text():
            return
        assert process.poll() is None, path.read_text()[-4000:]
        time.sleep(0.5)
    raise AssertionError(f"{text!r} not seen in {timeout:.0f}s:\n{path.read_text()[-4000:]}")


# What each way of backfilling says when stopped: Airflow's own backfill is cancelled, a run of several days failed.
STOPPED = {
    "1": ("Interrupted (SIGTERM): cancelling backfill", f"unfinished runs marked failed: {START}"),
    "all": (
        "Interrupted (SIGTERM): marking run range__",
        f"the next `make backfill` of {START} .. {END} runs",
    ),
}


@pytest.fixture(scope="module", params=sorted(STOPPED))
def interrupted(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("shutdown")
    lake = generate(root / "lake", scale=1, seed=5, days=1)
    home = str(root / "airflow")
    port = free_port()
    env = {
        **os.environ,
        "SPARKIFY_LAKE": str(lake.root),
        "SPARKIFY_DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "AIRFLOW_HOME": home,
        "SPARKIFY_AIRFLOW_PORT": str(port),
        "SPARKIFY_DBT_DOCS_DIR": str(root / "dbt_docs"),
    }
    output = root / "first.log"
    with output.open("w") as log:
        make = make_backfill(env, log, request.param)
        try:
            # Mid-run: the backfill created, its first day's tasks running.
            wait_for(output, f"running {START}", make, timeout=300)
            running = started_by(home)
            make.send_signal(signal.SIGTERM)
            code = make.wait(timeout=120)
        finally:
            if make.poll() is None:
                os.killpg(make.pid, signal.SIGKILL)
    return {
        "root": root,
        "env": env,
        "home": home,
        "port": port,
        "code": code,
        "running": running,
        "output": output.read_text(),
        "days_per_run": request.param,
    }


def test_sigterm_stops_every_process_the_command_started(interrupted):
    assert interrupted["code"] != 0, interrupted["output"][-3000:]
    for said in STOPPED[interrupted["days_per_run"]]:
        assert said in interrupted["output"], interrupted["output"][-3000:]
    # The api-server, the scheduler and the dag-processor, and their children, were running.
    commands = " ".join(" ".join(p.cmdline()) for p in interrupted["running"] if p.is_running())
    assert len(interrupted["running"]) >= 3, commands
    assert started_by(interrupted["home"]) == []


def test_no_task_is_left_running_in_the_metadata_database(interrupted):
    """Each task stopped by the signal recorded its end: none is left for the next start to find running (it
    would wait out Airflow's orphan check, five minutes, before running the day again)."""
    with sqlite3.connect(f"file:{interrupted['home']}/airflow.db?mode=ro", uri=True) as con:
        active = con.execute(
            "select task_id, state from task_instance where state in ('queued', 'running', 'restarting')"
        ).fetchall()
    assert active == []


def test_the_port_and_the_duckdb_file_are_free(interrupted):
    assert not port_in_use(interrupted["port"])
    with duckdb.connect(str(interrupted["root"] / "warehouse.duckdb")) as con:  # read-write: no other holder
        con.execute("select 1")


def test_the_next_backfill_of_the_same_days_completes(interrupted):
    output = interrupted["root"] / "second.log"
    with output.open("w") as log:
        make = make_backfill(interrupted["env"], log, interrupted["days_per_run"])
        code = make.wait(timeout=600)
    text = output.read_text()
    assert code == 0, text[-4000:]
    assert "runs: 1 succeeded, 0 failed" in text, text[-4000:]
    # No task was left for this start to find dead and retry: the interrupted runs were rerun from the start.
    assert " failed, next try " not in text and "stopped from outside" not in text, text[-4000:]
    assert started_by(interrupted["home"]) == []
