"""The Sparkify health view's page, from a real DuckDB warehouse: what the warehouse and Airflow hold is rendered
escaped, a failed task shows its error, and a day whose counts are an earlier load's says so. The whole view,
signed in, through a real api-server and Chromium: tests/e2e/test_health_view.py."""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb
import pytest

from sparkify.health import Day, page
from sparkify.settings import from_env

SCRIPT = "<script>alert(1)</script>"
DAY = date(2018, 11, 5)


@pytest.fixture
def settings(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema analytics")
        con.execute("create table analytics.dim_songs (song_id varchar, title varchar)")
        con.execute("insert into analytics.dim_songs values ('S1', ?)", [SCRIPT])
    return from_env({"SPARKIFY_DUCKDB_PATH": str(path), "SPARKIFY_LAKE": str(tmp_path / "lake")})


def failed_day(**overrides) -> Day:
    run = {"dag_run_id": f"backfill__{DAY}T00:00:00+00:00", "state": "failed"}
    task = {
        "dag_run_id": run["dag_run_id"],
        "task_id": "stage_events",
        "state": "failed",
        "try_number": 1,
        "map_index": -1,
        "error": f"BadInputError: log_data/2018/11/{DAY}-events.json: 15 of 260 lines are bad {SCRIPT}",
    }
    problem = {
        "node_name": f"unique_dim_songs_title{SCRIPT}",
        "status": "fail",
        "failures": 1,
        "message": SCRIPT,
        "compiled_sql": "select song_id, title from analytics.dim_songs",
    }
    fields = {"run": run, "failed_tasks": [task], "problems": [problem], **overrides}
    return Day(DAY, **fields)


def test_values_from_the_warehouse_and_airflow_are_escaped(settings):
    html = page(settings, [failed_day()], ui_url="")
    assert SCRIPT not in html
    # The title read from the warehouse, the test's name and message, the task's error: each shown, escaped.
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 4, html


def test_a_failed_task_shows_its_error_its_try_and_its_log(settings):
    html = page(settings, [failed_day()], ui_url="/base")
    assert f"BadInputError: log_data/2018/11/{DAY}-events.json: 15 of 260 lines are bad" in html
    assert "(try 1, the link opens its log)" in html
    run_id = f"backfill__{DAY}T00%3A00%3A00%2B00%3A00"
    assert f'href="/base/dags/sparkify_daily/runs/{run_id}/tasks/stage_events?try_number=1"' in html


def test_a_mapped_task_links_to_its_own_instance(settings):
    day = failed_day()
    day.failed_tasks[0]["map_index"] = 2
    assert "/tasks/stage_events/mapped/2?try_number=1" in page(settings, [day], ui_url="")


@pytest.mark.parametrize(
    ("run_state", "built", "earlier"),
    [("failed", False, True), ("running", False, True), ("failed", True, False), ("success", False, False)],
)
def test_counts_of_an_earlier_load_are_marked(settings, run_state, built, earlier):
    day = failed_day(volumes={"log_date": DAY, "events_staged": 250}, volumes_built=built)
    day.run["state"] = run_state
    assert day.volumes_from_earlier_load is earlier
    html = page(settings, [day], ui_url="")
    assert ('data-earlier-load="true"' in html) is earlier
    assert ("counts shown for this day are those of an earlier load" in html) is (
        earlier and run_state == "failed"
    )


def test_a_day_without_counts_is_not_marked(settings):
    assert not failed_day().volumes_from_earlier_load


def test_a_run_of_several_days_is_each_of_its_days_run():
    from sparkify.airflow_plugin import runs_by_day

    def run(run_id, start, end, queued):
        return {
            "dag_run_id": run_id,
            "logical_date": f"{start}T00:00:00Z",
            "data_interval_start": f"{start}T00:00:00Z",
            "data_interval_end": f"{end}T00:00:00Z",
            "queued_at": queued,
            "state": "success",
        }

    week = run("range__2018-11-01_2018-11-07", "2018-11-01", "2018-11-08", "2026-01-02T00:00:00Z")
    # A scheduled run: its interval is a point in time, its day the logical date's.
    older = run("scheduled__2018-11-03", "2018-11-03", "2018-11-03", "2026-01-01T00:00:00Z")
    newer = run("manual__2018-11-05", "2018-11-05", "2018-11-05", "2026-01-03T00:00:00Z")
    runs = runs_by_day([older, week, newer])
    assert sorted(runs) == [date(2018, 11, day) for day in range(1, 8)]
    # The run queued last is the day's run.
    assert runs[date(2018, 11, 3)] is week and runs[date(2018, 11, 5)] is newer
    assert {runs[date(2018, 11, day)]["dag_run_id"] for day in (1, 2, 4, 6, 7)} == {week["dag_run_id"]}


def test_a_days_failed_tasks_are_its_own_staging_and_the_runs_tasks():
    from sparkify.airflow_plugin import task_of_day

    mapped = {"task_id": "stage_events", "map_index": 2, "rendered_map_index": "2018-11-03"}
    assert task_of_day(mapped, date(2018, 11, 3))
    assert not task_of_day(mapped, date(2018, 11, 4))
    assert task_of_day({"task_id": "dbt_sparkify.dbt_producer_watcher", "map_index": -1}, date(2018, 11, 4))
    assert task_of_day(
        {"task_id": "stage_events", "map_index": 0, "rendered_map_index": None}, date(2018, 11, 4)
    )


@pytest.mark.parametrize(
    ("run_type", "state", "ended", "late"),
    [
        # Not done, now past the deadline (the day ended 2018-11-02 00:00, deadline 3 h later).
        ("scheduled", "running", None, True),
        ("scheduled", "failed", None, True),
        # Done before the deadline, and after it.
        ("scheduled", "success", "2018-11-02T02:59:00+00:00", False),
        ("scheduled", "success", "2018-11-02T03:01:00+00:00", True),
        # A backfill or a manual run has no deadline.
        ("backfill", "running", None, False),
        ("manual", "failed", None, False),
    ],
)
def test_a_scheduled_day_past_its_deadline_is_late(settings, run_type, state, ended, late):
    from sparkify.health import mark_arrival

    day = Day(
        date(2018, 11, 1),
        run={
            "dag_run_id": "r",
            "run_type": run_type,
            "state": state,
            "end_date": ended,
            "data_interval_start": "2018-11-01T00:00:00+00:00",
            "data_interval_end": "2018-11-02T00:00:00+00:00",
        },
    )
    mark_arrival(settings, day, now=datetime(2018, 11, 2, 4, tzinfo=UTC))
    assert day.late is late
    assert ('data-late="true"' in page(settings, [day], ui_url="")) is late
    if late:
        assert "late: deadline 2018-11-02 03:00 UTC" in page(settings, [day], ui_url="")


def test_a_day_waiting_for_its_file_says_since_when(settings):
    from sparkify.health import mark_arrival

    run = {
        "dag_run_id": "scheduled__2018-11-02T00:00:00+00:00",
        "run_type": "scheduled",
        "state": "running",
        "waiting_since": "2018-11-02T00:00:05Z",
        "data_interval_start": "2018-11-01T00:00:00+00:00",
        "data_interval_end": "2018-11-02T00:00:00+00:00",
    }
    day = Day(date(2018, 11, 1), run=run)
    mark_arrival(settings, day, now=datetime(2018, 11, 2, 1, tzinfo=UTC))
    assert (day.state, day.late) == ("waiting", False)
    html = page(settings, [day], ui_url="")
    assert 'data-state="waiting"' in html and "waiting for file since 2018-11-02T00:00:05Z" in html


def test_an_unreadable_warehouse_still_shows_each_days_run(settings):
    """Before the first staging (no warehouse yet), or while a run writes the DuckDB file: the runs, and why."""
    from sparkify.health import run_days_only

    runs = {
        date(2018, 11, day): {"dag_run_id": f"r{day}", "state": "running", "run_type": "scheduled"}
        for day in (1, 2)
    }
    html = page(settings, run_days_only(runs), ui_url="", error="database does not exist")
    assert 'id="unreadable"' in html and "database does not exist" in html
    assert html.index('data-day="2018-11-02"') < html.index('data-day="2018-11-01"')
