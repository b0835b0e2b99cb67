"""A scheduled run waits for its day's event log; a late day is alerted once. Through the Airflow scheduler, with
short timeouts set by the environment, a real SMTP listener on loopback, and the health view as a signed-in user.

The schedule's one day is yesterday (UTC), so the scheduler itself creates that day's run, a scheduled one, when
the DAG is unpaused; its file is held back. In order, on one Airflow:

1. the run waits for the file, and the health view shows the day waiting;
2. the file never comes: after the arrival timeout the wait fails once, not retried, naming the day and where the
   file was expected, alerted once by mail; nothing was staged;
3. the day's deadline (set to have passed as the run is created) sends exactly one deadline alert, by mail and in
   its callback's log, naming the day, the deadline and the file it waits for; the view marks the day late;
4. a backfill of a past day whose file is missing still fails at once, without waiting, and has no deadline;
5. the run cleared, it waits again, the file lands while it waits, and the run succeeds: the day is staged.
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from sparkify.datagen import generate
from sparkify.health import HEALTH_PATH
from sparkify.lake import Lake
from sparkify.local_airflow import DAG_ID, free_port, running
from sparkify.settings import from_env
from sparkify.warehouses import warehouse_for
from tests.e2e.alerting import SmtpSink, alert_connection, alert_lines, mail_text, serve
from tests.e2e.conftest import signed_in_health_view

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

TIMEOUT_SECONDS = 40
WAIT = "wait_for_logs"


@pytest.fixture(scope="module")
def late(tmp_path_factory):
    root = tmp_path_factory.mktemp("arrival")
    now = datetime.now(UTC)
    day = now.date() - timedelta(days=1)
    lake = generate(root / "lake", scale=1, seed=13, start=day, end=day).root
    log = lake / Lake.log_key(day)
    held = root / "held-back.json"
    shutil.move(log, held)
    smtp = SmtpSink()
    serve(smtp)
    # The day ended at midnight; its deadline has passed by the time the scheduler creates its run.
    since_day_ended = now - datetime.combine(now.date(), datetime.min.time(), UTC)
    env = {
        **os.environ,
        "SPARKIFY_LAKE": str(lake),
        "SPARKIFY_DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "SPARKIFY_DBT_DOCS_DIR": str(root / "dbt_docs"),
        "SPARKIFY_START_DATE": day.isoformat(),
        "SPARKIFY_END_DATE": day.isoformat(),
        "SPARKIFY_ARRIVAL_TIMEOUT": f"{TIMEOUT_SECONDS}s",
        "SPARKIFY_ARRIVAL_POKE": "2s",
        "SPARKIFY_DEADLINE": f"{max(0, int(since_day_ended.total_seconds()) - 60)}s",
        "SPARKIFY_ALERT_CONN_ID": "sparkify_alerts",
        "AIRFLOW_CONN_SPARKIFY_ALERTS": alert_connection(smtp),
    }
    settings = from_env(env)
    home = root / "airflow"
    try:
        with running(settings, free_port(), home=home, base_env=env) as airflow:
            airflow.unpause()
            yield {
                "airflow": airflow,
                "day": day.isoformat(),
                "log": log,
                "held": held,
                "smtp": smtp,
                "home": home,
                "settings": settings,
                "seen": {},
            }
    finally:
        smtp.shutdown()


def scheduled_run(airflow) -> dict:
    runs = airflow.api("GET", f"/dags/{DAG_ID}/dagRuns", params={"run_type": "scheduled"})["dag_runs"]
    assert len(runs) <= 1, runs
    return runs[0] if runs else {}


def wait_state(airflow, run_id: str) -> str | None:
    path = f"/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/{WAIT}"
    try:
        return airflow.api("GET", path)["state"]
    except httpx.HTTPStatusError:
        return None


def until(what: str, check, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def health(airflow, day: str) -> dict:
    response = httpx.get(f"{airflow.url}{HEALTH_PATH}.json", headers=airflow.auth_headers(), timeout=60)
    response.raise_for_status()
    return next(row for row in response.json() if row["day"] == day)


def deadline_mail(late) -> list[str]:
    return [mail_text(message) for message in late["smtp"].messages if "late, not done by" in message]


@pytest.fixture(scope="module")
def waiting(late):
    airflow = late["airflow"]
    run = until("the scheduled run", lambda: scheduled_run(airflow))
    until("the wait", lambda: wait_state(airflow, run["dag_run_id"]) == "up_for_reschedule")
    late["seen"]["waiting"] = health(late["airflow"], late["day"])
    return run


def test_the_scheduled_run_covers_the_day_that_ended_and_waits_for_its_file(late, waiting):
    assert waiting["run_type"] == "scheduled"
    assert waiting["logical_date"][:10] == late["day"]
    assert (waiting["data_interval_start"][:10], waiting["data_interval_end"][:10]) == (
        late["day"],
        (datetime.fromisoformat(late["day"]) + timedelta(days=1)).date().isoformat(),
    )
    shown = late["seen"]["waiting"]
    assert shown["state"] == "waiting", shown
    # The wait follows the run's first task: it began as the run started.
    assert shown["waiting_since"] == scheduled_run(late["airflow"])["start_date"], shown


@pytest.fixture(scope="module")
def timed_out(late, waiting):
    airflow = late["airflow"]
    run_id = waiting["dag_run_id"]
    until(
        "the run to fail", lambda: scheduled_run(airflow)["state"] == "failed", timeout=TIMEOUT_SECONDS + 120
    )
    return run_id


def test_a_file_that_never_comes_fails_the_wait_once_naming_it(late, timed_out):
    airflow = late["airflow"]
    [wait] = airflow.tries(timed_out, WAIT)
    assert (wait["state"], wait["try_number"]) == ("failed", 1)
    states = {ti["task_id"]: ti["state"] for ti in airflow.task_instances(timed_out)}
    assert states["stage_events"] == "upstream_failed" and states["stage_songs"] == "upstream_failed"
    expected = f"no event log for {late['day']} after {TIMEOUT_SECONDS} s at {late['log']}"
    [log] = Path(late["home"], "logs", f"dag_id={DAG_ID}").glob(
        f"run_id=scheduled__*/task_id={WAIT}/attempt=1.log"
    )
    [alert] = alert_lines(log)
    assert alert["error"] == f"AirflowSensorTimeout: {expected}", alert
    mails = [mail_text(message) for message in late["smtp"].messages if f"{WAIT} failed" in message]
    assert len(mails) == 1 and expected in mails[0], mails


def test_the_late_day_is_alerted_once_and_marked_late(late, timed_out):
    [mail] = until("the deadline alert", lambda: deadline_mail(late), timeout=60)
    assert late["day"] in mail and "the event log of" in mail
    callbacks = list(Path(late["home"], "logs", "executor_callbacks", DAG_ID).rglob("*"))
    alerts = [alert for path in callbacks if path.is_file() for alert in alert_lines(path)]
    [alert] = alerts
    assert (alert["kind"], alert["days"]) == ("deadline", [late["day"]])
    assert alert["waiting_for"] == f"the event log of {late['day']} at {late['log']}"
    deadline = datetime.fromisoformat(late["day"]) + timedelta(days=1) + late["settings"].deadline
    assert alert["deadline"] == deadline.replace(tzinfo=UTC).isoformat()
    shown = health(late["airflow"], late["day"])
    assert (shown["late"], shown["state"], shown["waiting_since"]) == (True, "failed", None), shown
    assert shown["deadline"] == deadline.replace(tzinfo=UTC).isoformat()


def test_a_backfill_of_a_missing_past_day_fails_at_once(late, timed_out):
    airflow = late["airflow"]
    past = (datetime.fromisoformat(late["day"]) - timedelta(days=1)).date().isoformat()
    airflow.create_backfill(past, past, 1)
    [run] = airflow.wait_runs_finished(past, past, 1, timeout=240)
    assert run["state"] == "failed"
    [wait] = airflow.tries(run["dag_run_id"], WAIT)
    assert (wait["state"], wait["try_number"]) == ("success", 1)
    [staging] = airflow.tries(run["dag_run_id"], "stage_events", map_index=0)
    assert (staging["state"], staging["try_number"]) == ("failed", 1)
    # A backfill has no deadline: still the one deadline alert.
    assert len(deadline_mail(late)) == 1


def test_the_cleared_run_waits_and_succeeds_when_the_file_lands(late, timed_out, chromium):
    airflow = late["airflow"]
    path = f"/dags/{DAG_ID}/dagRuns/{quote(timed_out, safe='')}/clear"
    airflow.api("POST", path, json={"dry_run": False})
    until("the wait again", lambda: wait_state(airflow, timed_out) == "up_for_reschedule")
    assert health(airflow, late["day"])["state"] == "waiting"
    # As a person sees it, signed in: waiting for its file, and late.
    page = signed_in_health_view(chromium, airflow)
    row = page.locator(f'#grid tr[data-day="{late["day"]}"]')
    assert row.get_attribute("data-state") == "waiting"
    assert "waiting for file since" in row.inner_text()
    assert row.locator('[data-late="true"]').inner_text().startswith("late: deadline ")
    page.close()
    shutil.move(late["held"], late["log"])
    until("the run to succeed", lambda: scheduled_run(airflow)["state"] in ("success", "failed"), timeout=300)
    assert scheduled_run(airflow)["state"] == "success"
    tries = airflow.tries(timed_out, WAIT)
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]
    with warehouse_for(late["settings"]).cursor() as cur:
        cur.execute("select count(*) from landing.staging_events where log_date = ?", [late["day"]])
        assert cur.fetchone()[0] > 0
    shown = health(airflow, late["day"])
    # Done, after its deadline: still marked late. Still one deadline alert.
    assert (shown["run_state"], shown["late"], shown["waiting_since"]) == ("success", True, None), shown
    assert shown["state"] in ("ok", "flagged"), shown
    assert len(deadline_mail(late)) == 1
