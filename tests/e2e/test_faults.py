"""Faults in real DAG runs on PostgreSQL, through the Airflow scheduler and its REST API:

- the warehouse is unreachable when the run starts: the tasks retry with backoff and the run completes once it is
  back (the warehouse is reached through a TCP relay on loopback that refuses connections, then forwards them);
- a data-quality test fails: the failure callback logs one structured alert line and e-mails it through an SMTP
  connection (a real SMTP listener on loopback); the operator fixes the data, clears the failed test task (with
  what depends on it) through the API, and the run completes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import socketserver
import threading
import uuid
from datetime import date

import pytest

from sparkify.cli.watch import watch_backfill
from sparkify.datagen import generate
from sparkify.lake import Lake
from sparkify.local_airflow import DAG_ID, free_port, running
from sparkify.settings import from_env
from sparkify.staging import postgres
from sparkify.warehouses import warehouse_for
from tests.conftest import drop_database, read_events
from tests.e2e.alerting import SmtpSink, alert_connection, alert_lines, serve

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

FAILING_TEST = "dbt_sparkify.stg_sparkify__events.test"
PRODUCER = "dbt_sparkify.dbt_producer_watcher"


class Relay(socketserver.ThreadingTCPServer):
    """A TCP relay to PostgreSQL that is 'down' (accepts and drops every connection) until ``up()``."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__(("127.0.0.1", 0), _RelayHandler)
        self.target = target
        self.is_up = threading.Event()
        self.dropped = 0

    @property
    def port(self) -> int:
        return self.server_address[1]

    def up(self) -> None:
        self.is_up.set()


class _RelayHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        relay: Relay = self.server  # type: ignore[assignment]
        if not relay.is_up.is_set():
            relay.dropped += 1
            return
        upstream = socket.create_connection(relay.target)

        def pump(source: socket.socket, sink: socket.socket) -> None:
            try:
                while data := source.recv(65536):
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                for sock in (source, sink):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

        back = threading.Thread(target=pump, args=(upstream, self.request), daemon=True)
        back.start()
        pump(self.request, upstream)
        back.join()
        upstream.close()


@pytest.fixture(scope="module")
def faults(tmp_path_factory, postgres_server):
    root = tmp_path_factory.mktemp("faults")
    lake = generate(root / "lake", scale=1, seed=3, days=2).root
    # One event of the 2nd has a level that does not exist: the staging model's accepted_values test fails.
    path = lake / Lake.log_key(date(2018, 11, 2))
    lines = path.read_text().splitlines()
    bad = json.loads(lines[5])
    bad["level"] = "gold"
    lines[5] = json.dumps(bad)
    path.write_text("\n".join(lines) + "\n")

    database = f"sparkify_faults_{uuid.uuid4().hex[:10]}"
    pg = from_env(os.environ).postgres
    relay, smtp = Relay((pg.host, pg.port)), SmtpSink()
    serve(relay), serve(smtp)
    env = {
        **os.environ,
        "SPARKIFY_LAKE": str(lake),
        "SPARKIFY_WAREHOUSE": "postgres",
        "SPARKIFY_PG_DATABASE": database,
        "SPARKIFY_PG_HOST": "127.0.0.1",
        "SPARKIFY_PG_PORT": str(relay.port),
        "SPARKIFY_RETRIES": "3",
        "SPARKIFY_RETRY_DELAY_SECONDS": "2",
        "SPARKIFY_DBT_DOCS_DIR": str(root / "dbt_docs"),
        "SPARKIFY_ALERT_CONN_ID": "sparkify_alerts",
        "AIRFLOW_CONN_SPARKIFY_ALERTS": alert_connection(smtp),
    }
    # The database itself is created beforehand, straight on the server (as `make backfill` does).
    postgres.ensure_database(from_env({**env, "SPARKIFY_PG_PORT": str(pg.port)}))
    settings = from_env(env)
    home = root / "airflow"
    state: dict[str, object] = {"lake": lake, "env": env, "relay": relay, "smtp": smtp, "home": home}
    try:
        with running(settings, free_port(), home=home, base_env=env) as airflow:
            state["airflow"] = airflow
            yield state
    finally:
        relay.shutdown()
        smtp.shutdown()
        drop_database(database)


def run_of(airflow, day: str) -> dict:
    runs = airflow.runs(day, day)
    return runs[0] if runs else {}


def states(airflow, run_id: str) -> dict[str, dict]:
    return {ti["task_id"]: ti for ti in airflow.task_instances(run_id)}


def wait_for_run(airflow, day: str, wanted: set[str], timeout: float) -> dict:
    return airflow.wait_until(
        f"the run of {day} to be {' or '.join(sorted(wanted))}",
        lambda: (run := run_of(airflow, day)) and run["state"] in wanted and run,
        timeout=timeout,
        interval=2,
        describe=lambda: airflow.describe_runs(day, day),
    )


@pytest.fixture(scope="module")
def outage(faults):
    """Both days backfilled while the warehouse is down; it comes back after the first task failed."""
    airflow, relay = faults["airflow"], faults["relay"]
    airflow.create_backfill("2018-11-01", "2018-11-02", max_active_runs=1)
    # What `make backfill` prints meanwhile, watched as it does.
    progress = io.StringIO()
    watcher = threading.Thread(
        target=watch_backfill, args=(airflow, "2018-11-01", "2018-11-02", 900, progress), daemon=True
    )
    watcher.start()
    faults["progress"], faults["watcher"] = progress, watcher

    def retrying():
        run = run_of(airflow, "2018-11-01")
        return run and any(
            ti["state"] == "up_for_retry" for ti in states(airflow, run["dag_run_id"]).values()
        )

    airflow.wait_until("a task to fail on the unreachable warehouse", retrying, timeout=180, interval=1)
    dropped = relay.dropped
    relay.up()
    first = wait_for_run(airflow, "2018-11-01", {"success", "failed"}, timeout=400)
    return {"dropped": dropped, "first": first}


def test_the_run_retries_through_a_warehouse_outage(faults, outage):
    airflow = faults["airflow"]
    assert outage["dropped"] >= 1
    assert outage["first"]["state"] == "success"
    tasks = states(airflow, outage["first"]["dag_run_id"])
    retried = {task_id for task_id, ti in tasks.items() if ti["try_number"] > 1}
    assert retried & {"stage_events", "stage_songs"}, tasks
    assert all(ti["state"] == "success" for ti in tasks.values())
    settings = from_env(faults["env"])
    with warehouse_for(settings).cursor() as cur:
        cur.execute("select count(*) from analytics.fct_songplays where log_date = date '2018-11-01'")
        plays = cur.fetchone()[0]
    expected = {
        (e["sessionId"], e["itemInSession"])
        for e in read_events(faults["lake"])
        if e["_day"] == "2018-11-01" and e["page"] == "NextSong"
    }
    assert plays == len(expected)


@pytest.fixture(scope="module")
def failed_test(faults, outage):
    airflow = faults["airflow"]
    run = wait_for_run(airflow, "2018-11-02", {"success", "failed"}, timeout=400)
    return {"run": run, "tasks": states(airflow, run["dag_run_id"])}


def test_the_progress_output_shows_each_retry_and_failure_as_it_happens(faults, failed_test):
    faults["watcher"].join(timeout=120)
    lines = faults["progress"].getvalue().splitlines()
    # A staging task of the 1st failed on the unreachable warehouse and waited to retry (which try the watch
    # saw first depends on its 2-second polls against 2-3 s back-offs).
    retries = [line for line in lines if re.match(r"    2018-11-01 stage_\w+ try \d of 4 failed, ", line)]
    assert retries, "\n".join(lines)
    # When the next try is (Airflow's exponential back-off from 2 s), and why: the error's type and message.
    for line in retries:
        assert re.search(r"next try between \d\d:\d\d:\d\d and \d\d:\d\d:\d\d UTC: \w+: \S", line), line
    failed = [
        line for line in lines if line.startswith(f"    2018-11-02 {FAILING_TEST} failed on try 1 of 4")
    ]
    assert len(failed) == 1, "\n".join(lines)
    assert ", not retried: AirflowFailException: " in failed[0]


def test_a_failing_data_test_stops_what_depends_on_it(failed_test):
    assert failed_test["run"]["state"] == "failed"
    tasks = failed_test["tasks"]
    assert tasks[FAILING_TEST]["state"] == "failed"
    assert {tasks[t]["state"] for t in ("dbt_sparkify.fct_songplays.run", "summary", "docs")} == {
        "upstream_failed"
    }
    assert tasks["stage_events"]["state"] == "success"


def test_the_failure_is_alerted_in_the_task_log_and_by_mail(faults, failed_test):
    run_id = failed_test["run"]["dag_run_id"]
    attempts = sorted(
        (faults["home"] / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={FAILING_TEST}").glob(
            "attempt=*.log"
        )
    )
    # A failing data test is not retried (3 retries are configured): one try, one alert.
    assert [path.name for path in attempts] == ["attempt=1.log"]
    alerts = alert_lines(attempts[-1])
    assert len(alerts) == 1, attempts[-1].read_text()[-3000:]
    alert = alerts[0]
    assert (alert["dag_id"], alert["run_id"], alert["task_id"], alert["try_number"]) == (
        DAG_ID,
        run_id,
        FAILING_TEST,
        1,
    )
    assert alert["error"].startswith("AirflowFailException: ")
    assert "finished with status 'fail'" in alert["error"] and "not retried" in alert["error"]
    assert alert["log_url"].startswith("http")
    mail = [message for message in faults["smtp"].messages if FAILING_TEST in message]
    assert len(mail) == 1
    assert "oncall@sparkify.test" in mail[0] and run_id in mail[0]


def test_clearing_the_failed_test_after_fixing_the_data_completes_the_run(faults, failed_test):
    airflow = faults["airflow"]
    run_id = failed_test["run"]["dag_run_id"]
    settings = from_env(faults["env"])
    with warehouse_for(settings).cursor(read_only=False) as cur:
        cur.execute("update landing.staging_events set level = 'free' where level = 'gold'")
        assert cur.rowcount == 1
    airflow.api(
        "POST",
        f"/dags/{DAG_ID}/clearTaskInstances",
        json={
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": [FAILING_TEST],
            "include_downstream": True,
            "include_upstream": False,
            "only_failed": False,
            "reset_dag_runs": True,
        },
    )
    # Cleared, the run is queued again; it must end in success (a new failure shows as a timeout naming it).
    wait_for_run(airflow, "2018-11-02", {"success"}, timeout=400)
    tasks = states(airflow, run_id)
    # Every task succeeded; the one dbt build of the run failed with the test and skipped its retry (a build
    # is never rerun whole: each cleared task ran its own node).
    assert tasks.pop(PRODUCER)["state"] == "skipped"
    assert all(ti["state"] == "success" for ti in tasks.values()), {
        t: ti["state"] for t, ti in tasks.items() if ti["state"] != "success"
    }
    cleared = [t for t in tasks if t.startswith("dbt_sparkify.") and tasks[t]["try_number"] > 1]
    assert FAILING_TEST in cleared and "dbt_sparkify.fct_songplays.run" in cleared
    # Staging was not rerun: only the cleared task and what depends on it ran again.
    assert tasks["stage_events"]["try_number"] == failed_test["tasks"]["stage_events"]["try_number"]
    with warehouse_for(settings).cursor() as cur:
        cur.execute(
            "select log_date, count(*), count(distinct songplay_id) from analytics.fct_songplays group by 1 order by 1"
        )
        per_day = cur.fetchall()
        cur.execute("select count(distinct run_id), sum(dbt_tests_passed) > 0 from landing.pipeline_audit")
        audit = cur.fetchone()
    events = read_events(faults["lake"])
    for day, plays, distinct in per_day:
        expected = {
            (e["sessionId"], e["itemInSession"])
            for e in events
            if e["_day"] == day.isoformat() and e["page"] == "NextSong"
        }
        assert plays == distinct == len(expected)
    assert len(per_day) == 2
    assert audit == (2, True)
