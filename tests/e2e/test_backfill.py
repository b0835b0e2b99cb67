"""Real DAG runs through the Airflow scheduler, exactly as `make backfill` runs them, on freshly generated data.

The warehouse contents are checked against what the generator wrote, computed here straight from the JSON files.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import pytest

from sparkify.alerts import ALERT_PREFIX
from sparkify.dbt_docs import DOCS_PATH, DOCS_SLUG
from sparkify.local_airflow import free_port, running
from sparkify.settings import from_env
from tests.conftest import (
    MARTS,
    REPO,
    backfill,
    build_day_by_day,
    drop_database,
    expected_matches,
    fingerprints,
    read_events,
    read_songs,
)
from tests.e2e.conftest import DAYS, airflow_workspace, assert_warmed_before_forking, task_logs, two_days

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

# The watcher's node tasks of a run: 13 models (a run and a test task each), 2 sources, 8 tests between two models.
SENSORS = 36
TABLES = ("landing.staging_events", "landing.staging_songs", "landing.staging_quarantine", *MARTS)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    lake = two_days(root)
    env = airflow_workspace(root, lake, SPARKIFY_RETRIES="1", SPARKIFY_RETRY_DELAY_SECONDS="3")
    return {"root": root, "lake": lake, "env": env, "db": root / "warehouse.duckdb"}


def fetch(workspace, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(str(workspace["db"]), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


@pytest.fixture(scope="module")
def first_backfill(workspace):
    # Both days at once: the DuckDB writers of the two runs must queue on the one-slot pool, not collide.
    result = backfill(workspace["env"], "2018-11-01", "2018-11-02", "--max-active-runs", "2")
    assert result.returncode == 0, result.report
    return result


def test_backfill_reports_success(first_backfill):
    out = first_backfill.stdout
    assert "runs: 2 succeeded, 0 failed" in out
    assert "runs done 2/2" in out
    assert "running 2018-11-01, 2018-11-02" in out, "the two runs never ran at the same time"
    tests_line = next(line for line in out.splitlines() if "dbt test tasks:" in line)
    assert tests_line.strip().endswith("0 failed") and not tests_line.strip().startswith("dbt test tasks: 0 ")
    assert "analytics.fct_songplays" in out


def test_each_node_task_reports_the_one_build_of_its_run(workspace, first_backfill):
    """Watcher mode (the default): one dbt build per run, on the project as the scheduler's warm-up parsed it;
    every model, test and source task succeeds at its first try with that build's result, running no dbt."""
    home = workspace["env"]["AIRFLOW_HOME"]
    assert_warmed_before_forking(home)
    builds = task_logs(home, "dbt_sparkify.dbt_producer_watcher")
    assert len(builds) == 2, builds
    for build in builds:
        text = build.read_text()
        assert "dbt runs on the project as the warm-up parsed it (unchanged since): build" in text
        assert "Completed successfully" in text
        # The day's data tests ran; the unit tests (fixed inputs, run by `make test`) did not.
        assert "START test not_null_fct_songplays_songplay_id" in text and "START unit_test" not in text
    sensors = [path for path in task_logs(home, "dbt_sparkify.*") if "dbt_producer_watcher" not in str(path)]
    assert len(sensors) == 2 * SENSORS
    assert all(path.name == "attempt=1.log" for path in sensors)
    for path in sensors:
        text = path.read_text()
        assert "Success criteria met" in text, path
        assert "Trying to run dbtRunner" not in text, path
    # A test between two models reports its own result (Cosmos pushes test results per model only).
    detached = next(p for p in sensors if "relationships_fct_songplays_song_id" in str(p)).read_text()
    assert "relationships_fct_songplays_song_id" in detached and "_tests_status" in detached


def test_the_scheduler_marked_the_backfill_complete_within_seconds_of_its_last_run(workspace, first_backfill):
    """`make backfill` stops Airflow once its backfill is marked complete: the project's scheduler checks every
    2 s (Airflow's own check runs every 30 s, sparkify.tuning.executor)."""
    database = Path(workspace["env"]["AIRFLOW_HOME"], "airflow.db")
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as con:
        [(completed, last_run_end)] = con.execute(
            "select b.completed_at, max(r.end_date) from backfill as b join dag_run as r on r.backfill_id = b.id "
            "where b.id = (select min(id) from backfill) group by b.id"
        ).fetchall()
    waited = datetime.fromisoformat(completed) - datetime.fromisoformat(last_run_end)
    assert timedelta(0) <= waited < timedelta(seconds=10), waited


def test_the_marts_equal_those_built_without_airflow(workspace, first_backfill, built_without_airflow):
    assert fingerprints(from_env(workspace["env"]), MARTS) == built_without_airflow[DAYS[-1]]


def test_staging_holds_every_line_of_each_day(workspace, first_backfill):
    events = read_events(workspace["lake"])
    per_day = defaultdict(int)
    for event in events:
        per_day[event["_day"]] += 1
    staged = fetch(
        workspace,
        "select cast(log_date as varchar), count(*) from landing.staging_events group by 1 order by 1",
    )
    assert staged == sorted(per_day.items())
    files = fetch(
        workspace,
        "select distinct cast(log_date as varchar), source_file from landing.staging_events order by 1",
    )
    for day, source_file in files:
        assert source_file == str(workspace["lake"] / f"log_data/2018/11/{day}-events.json")
    assert fetch(workspace, "select count(*) from landing.staging_songs")[0][0] == len(
        read_songs(workspace["lake"])
    )


def test_one_songplay_per_next_song_event(workspace, first_backfill):
    plays = [e for e in read_events(workspace["lake"]) if e["page"] == "NextSong"]
    per_day = defaultdict(int)
    for play in plays:
        per_day[play["_day"]] += 1
    loaded = fetch(
        workspace,
        "select cast(log_date as varchar), count(*) from analytics.fct_songplays group by 1 order by 1",
    )
    assert loaded == sorted(per_day.items())
    keys = fetch(workspace, "select session_id, item_in_session from analytics.fct_songplays")
    assert sorted(keys) == sorted((p["sessionId"], p["itemInSession"]) for p in plays)
    times = fetch(workspace, "select count(*), count(distinct start_time) from analytics.fct_songplays")[0]
    assert fetch(workspace, "select count(*) from analytics.dim_time")[0][0] == times[1]


def test_plays_are_matched_to_song_files(workspace, first_backfill):
    expected = expected_matches(workspace["lake"], "normalized")
    assert expected, "the generated days hold no play of a known song"
    matched = fetch(
        workspace,
        "select session_id, item_in_session, song_id from analytics.fct_songplays where song_id is not null",
    )
    assert {(s, i): song for s, i, song in matched} == expected
    artists = fetch(
        workspace,
        "select count(*) from analytics.fct_songplays as f join analytics.dim_songs as s on f.song_id = s.song_id "
        "where f.artist_id != s.artist_id",
    )
    assert artists == [(0,)]


def test_one_user_row_with_the_latest_level(workspace, first_backfill):
    latest = {}
    for event in read_events(workspace["lake"]):
        if not event["userId"]:
            continue
        order = (event["ts"], event["sessionId"], event["itemInSession"])
        if event["userId"] not in latest or order > latest[event["userId"]][0]:
            latest[event["userId"]] = (order, event["level"], event["firstName"])
    rows = fetch(workspace, "select user_id, level, first_name from analytics.dim_users")
    assert len(rows) == len({row[0] for row in rows})
    assert {user: (level, name) for user, level, name in rows} == {
        user: (level, name) for user, (_, level, name) in latest.items()
    }


def test_dimensions_from_song_files(workspace, first_backfill):
    songs = read_songs(workspace["lake"])
    assert fetch(workspace, "select count(*) from analytics.dim_songs")[0][0] == len(
        {s["song_id"] for s in songs}
    )
    assert fetch(workspace, "select count(*) from analytics.dim_artists")[0][0] == len(
        {s["artist_id"] for s in songs}
    )
    unknown_year = fetch(workspace, "select count(*) from analytics.dim_songs where release_year is null")[0][
        0
    ]
    assert unknown_year == len({s["song_id"] for s in songs if s["year"] == 0})


def run_log_dir(workspace, day: date) -> Path:
    """A backfill run's log folder: Airflow names the run of a day by when it may start, the next midnight."""
    run_id = f"backfill__{day + timedelta(days=1)}T00:00:00+00:00"
    return Path(workspace["env"]["AIRFLOW_HOME"], "logs", "dag_id=sparkify_daily", f"run_id={run_id}")


def test_rerun_is_idempotent_and_a_missing_day_fails_the_backfill(workspace, first_backfill):
    """A day already done, again (its run cleared: the run's build builds again and every node task reports
    it), and a day whose file is missing."""
    before = fingerprints(from_env(workspace["env"]))
    loaded_before = fetch(
        workspace, "select max(loaded_at) from landing.staging_events where log_date = ?", [date(2018, 11, 2)]
    )
    # 2018-11-02 again (already done), and 2018-11-03, whose log file does not exist.
    result = backfill(workspace["env"], "2018-11-02", "2018-11-03")
    assert result.returncode == 1, result.report
    assert "runs: 1 succeeded, 1 failed" in result.stdout, result.report
    assert "2018-11-03 failed: stage_events" in result.stdout, result.report
    # As it happened, the progress output named the task, its try and the error's first line.
    assert (
        "2018-11-03 stage_events failed on try 1 of 2, not retried: AirflowFailException: LakeError: "
        "no event log for 2018-11-03"
    ) in result.stdout, result.report
    # The missing file failed staging at once, with no retry (waiting cannot bring it), alerted with the
    # expected path, and nothing downstream ran.
    run_dir = run_log_dir(workspace, date(2018, 11, 3))
    ran = {path.name.removeprefix("task_id=") for path in run_dir.iterdir()}
    assert ran == {"days", "wait_for_logs", "stage_events", "stage_songs"}
    # A backfill does not wait for a file: its wait passed at its first check.
    [wait] = (run_dir / "task_id=wait_for_logs").glob("attempt=*.log")
    assert wait.name == "attempt=1.log" and "run does not wait for its files" in wait.read_text()
    # stage_events is mapped over the run's days: the day's instance, index 0.
    [last_attempt] = (run_dir / "task_id=stage_events" / "map_index=0").glob("attempt=*.log")
    assert last_attempt.name == "attempt=1.log"
    alerts = [line for line in last_attempt.read_text().splitlines() if ALERT_PREFIX in line]
    assert len(alerts) == 1 and "log_data/2018/11/2018-11-03-events.json" in alerts[0]
    loaded_after = fetch(
        workspace, "select max(loaded_at) from landing.staging_events where log_date = ?", [date(2018, 11, 2)]
    )
    assert loaded_after > loaded_before, "2018-11-02 was not staged again"
    # The day was built again by its run's one build; none of its node tasks ran its node itself. (Airflow
    # clears a finished run for a backfill; when the backfill's creation meets a locked SQLite database, Airflow
    # deletes the runs it had taken and the retried creation makes the run anew: either way, one build.)
    rerun_dir = run_log_dir(workspace, date(2018, 11, 2))
    builds = "".join(
        path.read_text()
        for path in (rerun_dir / "task_id=dbt_sparkify.dbt_producer_watcher").glob("attempt=*")
    )
    assert builds.count("OK created sql incremental model analytics.fct_songplays") == 2  # first run, rerun
    sensors = [path for path in rerun_dir.glob("task_id=dbt_sparkify.*") if "producer" not in path.name]
    assert len(sensors) == SENSORS
    for sensor in sensors:
        for attempt in sensor.iterdir():
            assert "Trying to run dbtRunner" not in attempt.read_text(), attempt
    assert fingerprints(from_env(workspace["env"])) == before


@pytest.fixture(scope="module")
def airflow(workspace, first_backfill):
    """The first backfill's Airflow home started again, once, for the tests that look at it or act on it
    through the REST API (after the re-run above, which is `make backfill` again and starts its own)."""
    env = workspace["env"]
    with running(from_env(env), free_port(), home=Path(env["AIRFLOW_HOME"]), base_env=env) as airflow:
        yield airflow


def test_the_build_pushes_only_what_the_node_tasks_read(airflow):
    [run] = airflow.runs("2018-11-01", "2018-11-01")
    entries = airflow.api(
        "GET",
        f"/dags/sparkify_daily/dagRuns/{run['dag_run_id']}/taskInstances/"
        "dbt_sparkify.dbt_producer_watcher/xcomEntries",
        params={"limit": 1000},
    )["xcom_entries"]
    keys = {entry["key"] for entry in entries}
    manifest = json.loads((REPO / "dbt_sparkify" / "target" / "manifest.json").read_text())
    tests = [node for node in manifest["nodes"].values() if node["resource_type"] == "test"]
    detached = {t["unique_id"] for t in tests if len(set(t["depends_on"]["nodes"])) > 1}
    key = lambda uid, suffix: f"{uid.replace('.', '__')}_{suffix}"  # noqa: E731
    assert {key(uid, "tests_status") for uid in detached} <= keys
    assert {key(uid, "dbt_event") for uid in detached} <= keys
    assert not {key(t["unique_id"], "dbt_event") for t in tests if t["unique_id"] not in detached} & keys
    assert {key("model.sparkify.fct_songplays", s) for s in ("status", "dbt_event", "tests_status")} <= keys
    assert len(keys) < 120, sorted(keys)


def test_a_cleared_run_builds_again_and_its_node_tasks_report_that_build(workspace, airflow):
    """The whole run of 2018-11-01 cleared through the API (as the UI's *Clear* does): its build's first try
    since the clear builds again (Cosmos would skip it as a retry), and every node task's first try since the
    clear reports that new build, running no dbt of its own. (The run belongs to the first `make backfill`,
    which waited for the scheduler to mark its backfill complete: a backfill cancelled instead, as the next
    command would, is paused, and Airflow would never start the cleared run.)"""
    env = workspace["env"]
    before = fingerprints(from_env(env))
    [run] = airflow.runs("2018-11-01", "2018-11-01")
    airflow.api("POST", f"/dags/sparkify_daily/dagRuns/{run['dag_run_id']}/clear", json={"dry_run": False})
    airflow.wait_until(
        "the cleared run to finish",
        lambda: airflow.finished_runs("2018-11-01", "2018-11-01", 1),
        timeout=300,
        interval=1,
    )
    [run] = airflow.runs("2018-11-01", "2018-11-01")
    tries = {
        ti["task_id"]: (ti["state"], ti["try_number"]) for ti in airflow.task_instances(run["dag_run_id"])
    }
    assert run["state"] == "success"
    run_dir = Path(env["AIRFLOW_HOME"], "logs", "dag_id=sparkify_daily", f"run_id={run['dag_run_id']}")
    build = (run_dir / "task_id=dbt_sparkify.dbt_producer_watcher" / "attempt=2.log").read_text()
    assert "the first since the run was cleared, not a retry: building again" in build
    assert "OK created sql incremental model analytics.fct_songplays" in build
    sensors = [path for path in run_dir.glob("task_id=dbt_sparkify.*") if "producer" not in path.name]
    assert len(sensors) == SENSORS
    for sensor in sensors:
        assert tries[sensor.name.removeprefix("task_id=")] == ("success", 2), sensor
        text = (sensor / "attempt=2.log").read_text()
        assert "Success criteria met" in text and "Trying to run dbtRunner" not in text, sensor
    assert fingerprints(from_env(env)) == before


def test_dbt_docs_are_served_in_the_airflow_ui(workspace, airflow):
    """The DAG regenerated the docs; the api-server alone serves them through Cosmos' plugin."""
    env = workspace["env"]
    settings = from_env(env)
    assert (settings.dbt_docs_dir / "catalog.json").is_file()
    # A run that found the docs current (project, profiles and warehouse columns as they were) kept them.
    docs_logs = [path.read_text() for path in task_logs(env["AIRFLOW_HOME"], "docs")]
    assert any("dbt docs in" in text and "are current" in text for text in docs_logs)
    # Anonymous: a script is refused, a browser is sent to the login page and back.
    assert httpx.get(f"{airflow.url}/cosmos/{DOCS_SLUG}/manifest.json", timeout=30).status_code == 401
    browser = httpx.get(f"{airflow.url}{DOCS_PATH}", headers={"Accept": "text/html"}, timeout=30)
    assert browser.status_code == 303 and "login" in browser.headers["location"]
    assert DOCS_PATH.replace("/", "%2F") in browser.headers["location"]
    # Signed in: the bearer token of the API, or the UI's cookie.
    signed_in = airflow.auth_headers()
    page = httpx.get(f"{airflow.url}{DOCS_PATH}", headers=signed_in, timeout=30)
    assert page.status_code == 200
    assert "dbt" in page.text.lower() and "<html" in page.text.lower()
    token = signed_in["Authorization"].removeprefix("Bearer ")
    manifest = httpx.get(
        f"{airflow.url}/cosmos/{DOCS_SLUG}/manifest.json", cookies={"_token": token}, timeout=30
    )
    assert manifest.status_code == 200
    nodes = manifest.json()["nodes"]
    assert {"model.sparkify.fct_songplays", "model.sparkify.dim_user_levels"} <= nodes.keys()
    catalog = httpx.get(f"{airflow.url}/cosmos/{DOCS_SLUG}/catalog.json", headers=signed_in, timeout=30)
    assert (
        httpx.get(
            f"{airflow.url}/cosmos/{DOCS_SLUG}/catalog.json",
            headers={"Authorization": "Bearer forged"},
            timeout=30,
        ).status_code
        == 401
    )
    assert "model.sparkify.fct_songplays" in catalog.json()["nodes"]


@pytest.fixture(scope="module")
def pg_database_module(postgres_server):
    name = f"sparkify_e2e_{uuid.uuid4().hex[:10]}"
    yield name
    drop_database(name)


@pytest.fixture(scope="module")
def on_postgres(workspace, first_backfill, pg_database_module):
    """The same files through the same SQL on PostgreSQL (staging, then dbt day by day, as the DAG runs them;
    PostgreSQL through Airflow, Celery and S3 is tests/e2e/test_celery_topology.py)."""
    env = {
        **workspace["env"],
        "SPARKIFY_WAREHOUSE": "postgres",
        "SPARKIFY_PG_DATABASE": pg_database_module,
        "DO_NOT_TRACK": "1",
    }
    return build_day_by_day(env, DAYS, workspace["root"] / "pg-target")


def test_duckdb_and_postgres_marts_are_identical(workspace, on_postgres):
    on_duckdb = fingerprints(from_env(workspace["env"]), MARTS)
    assert fingerprints(on_postgres, MARTS) == on_duckdb
    assert all(rows > 0 for rows, _ in on_duckdb.values())
