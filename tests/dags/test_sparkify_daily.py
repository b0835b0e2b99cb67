"""The shape of sparkify_daily: exact tasks and edges, schedule, DuckDB writers serialized, the run's days."""

from __future__ import annotations

import json
from datetime import timedelta

import pendulum
import pytest
from cosmos.operators._watcher.base import BaseConsumerSensor

from sparkify import settings as settings_module
from sparkify.run_days import (
    FIRST_DAY_TEMPLATE,
    LAST_DAY_TEMPLATE,
    IntervalError,
    batches,
    interval,
    label,
    run_days,
)
from sparkify.tuning.watcher import DbtBuildProducer, DbtRunSensor, DbtSourceSensor, DbtTestSensor
from tests.conftest import REPO
from tests.dags.conftest import parse

MODELS = (
    "stg_sparkify__events",
    "stg_sparkify__songs",
    "int_event_versions",
    "int_events_deduplicated",
    "dim_users",
    "dim_user_levels",
    "dim_songs",
    "dim_artists",
    "fct_songplays",
    "dim_time",
    "stg_sparkify__quarantine",
    "fct_daily_volumes",
    "fct_daily_anomalies",
)
SOURCES = ("dbt_sparkify.sparkify_staging_events_source", "dbt_sparkify.sparkify_staging_songs_source")


@pytest.fixture
def dag(dagbag):
    return dagbag.dags["sparkify_daily"]


def relationship_tests() -> set[str]:
    """Tests that span two models: Cosmos runs each once both models are built."""
    manifest = json.loads((REPO / "dbt_sparkify" / "target" / "manifest.json").read_text())
    return {
        f"dbt_sparkify.{node['name']}_test"
        for node in manifest["nodes"].values()
        if node["resource_type"] == "test" and len(set(node["depends_on"]["nodes"])) > 1
    }


def test_exact_task_ids(local_dag):
    dag = local_dag
    detached = relationship_tests()
    assert len(detached) == 8
    assert "dbt_sparkify.assert_songplays_reconcile_with_staged_events_test" in detached
    expected = {"days", "wait_for_logs", "stage_events", "stage_songs", "summary", "docs", *SOURCES}
    expected |= {f"dbt_sparkify.{model}.{kind}" for model in MODELS for kind in ("run", "test")}
    assert set(dag.task_ids) == expected | detached


def test_edges(local_dag):
    dag = local_dag

    def down(task_id):
        return dag.get_task(task_id).downstream_task_ids

    # Staging, then each source's freshness check, then the staging model that reads it. The quarantine has no
    # freshness (it is written only when a record is bad): its staging model follows staging directly.
    assert down("stage_events") == {*SOURCES, "dbt_sparkify.stg_sparkify__quarantine.run"}
    assert down("stage_songs") == {*SOURCES, "dbt_sparkify.stg_sparkify__quarantine.run"}
    assert down(SOURCES[0]) == {"dbt_sparkify.stg_sparkify__events.run"}
    assert down(SOURCES[1]) == {"dbt_sparkify.stg_sparkify__songs.run"}
    for model in MODELS:
        assert f"dbt_sparkify.{model}.test" in down(f"dbt_sparkify.{model}.run")
    # A model's tests gate what is built from it: the staged lines, then every version of the day's events and
    # the events deduplicated, then the marts recomputed from what the day changed.
    assert down("dbt_sparkify.stg_sparkify__events.test") == {
        "dbt_sparkify.int_event_versions.run",
        "dbt_sparkify.int_events_deduplicated.run",
        "dbt_sparkify.assert_songplays_reconcile_with_staged_events_test",
        "dbt_sparkify.fct_daily_volumes.run",
    }
    assert down("dbt_sparkify.int_event_versions.test") == {
        "dbt_sparkify.int_events_deduplicated.run",
        "dbt_sparkify.dim_users.run",
        "dbt_sparkify.dim_user_levels.run",
        "dbt_sparkify.fct_songplays.run",
        "dbt_sparkify.dim_time.run",
        "dbt_sparkify.fct_daily_volumes.run",
        "dbt_sparkify.fct_daily_anomalies.run",
    }
    # The monitoring marts: the day's volumes once its songplays are checked, then the anomaly flags.
    assert "dbt_sparkify.fct_daily_volumes.run" in down("dbt_sparkify.fct_songplays.test")
    assert "dbt_sparkify.fct_daily_anomalies.run" in down("dbt_sparkify.fct_daily_volumes.test")
    assert down("dbt_sparkify.int_events_deduplicated.test") == {
        "dbt_sparkify.dim_users.run",
        "dbt_sparkify.dim_user_levels.run",
        "dbt_sparkify.fct_songplays.run",
        "dbt_sparkify.assert_songplays_reconcile_with_staged_events_test",
    }
    assert "dbt_sparkify.dim_time.run" in down("dbt_sparkify.fct_songplays.test")
    assert "dbt_sparkify.fct_songplays.run" in down("dbt_sparkify.stg_sparkify__songs.test")
    # The summary follows the last tests: those between two models, and the anomaly flags' (which warn).
    assert dag.get_task("summary").upstream_task_ids == relationship_tests() | {
        "dbt_sparkify.fct_daily_anomalies.test",
        "days",
    }
    assert down("summary") == {"docs"}
    assert down("docs") == set()
    # Everything but staging runs after staging; summary, then docs, after everything else.
    for task in dag.tasks:
        upstream = {t.task_id for t in task.get_flat_relatives(upstream=True)}
        downstream = {t.task_id for t in task.get_flat_relatives(upstream=False)}
        if task.task_id not in {"days", "wait_for_logs", "stage_events", "stage_songs"}:
            assert {"stage_events", "stage_songs"} <= upstream
        if task.task_id not in {"summary", "docs"}:
            assert {"summary", "docs"} <= downstream


def test_schedule_and_run_settings(dag):
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    # A run per day, once the day has ended: its data interval is the day, its logical date the day's start.
    timetable = coerce_to_core_timetable(dag.timetable)
    start = pendulum.datetime(2018, 11, 1, tz="UTC")
    first = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=start, latest=None, catchup=True),
    )
    assert (first.logical_date, first.run_after) == (start, start.add(days=1))
    assert (first.data_interval.start, first.data_interval.end) == (start, start.add(days=1))
    # The UI's Trigger button: the last day that has ended.
    manual = timetable.infer_manual_data_interval(run_after=pendulum.datetime(2018, 11, 6, 1, 30, tz="UTC"))
    assert (manual.start, manual.end) == (start.add(days=4), start.add(days=5))
    # The sample's first day, and no last day: none is configured here.
    assert dag.start_date == pendulum.datetime(2018, 11, 1, tz="UTC")
    assert dag.end_date is None
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    for task in dag.tasks:
        # The tasks that write the warehouse queue on its pool; watcher sensors only read XComs, and the wait
        # for the day's files only reads the lake.
        if not isinstance(task, BaseConsumerSensor) and task.task_id != "wait_for_logs":
            assert task.pool == "sparkify_duckdb", task.task_id
        assert task.retries == 2
        assert task.retry_delay == timedelta(minutes=5)
        assert task.retry_exponential_backoff == 2.0
        assert task.max_retry_delay == timedelta(minutes=30)
        assert task.on_failure_callback, task.task_id


def test_dbt_tasks_run_the_days_of_the_data_interval(dag):
    # (A watcher sensor keeps the arguments of the LOCAL task it replaces: it runs them when retried.)
    task = dag.get_task("dbt_sparkify.fct_songplays.run")
    assert not task.vars, "--vars would make dbt parse the project again at every new day"
    assert (task.env["SPARKIFY_RUN_DATE"], task.env["SPARKIFY_RUN_END_DATE"]) == (
        FIRST_DAY_TEMPLATE,
        LAST_DAY_TEMPLATE,
    )
    day = pendulum.parse("2018-11-07")
    context = {
        "data_interval_start": day,
        "data_interval_end": day,
        "macros": {"timedelta": timedelta},
        "run_id": "scheduled__2018-11-07",
    }
    rendered = task.render_template(task.env, context)
    # The day, and the run its results are kept under (landing.dbt_results).
    assert (
        rendered["SPARKIFY_RUN_DATE"],
        rendered["SPARKIFY_RUN_END_DATE"],
        rendered["SPARKIFY_RUN_ID"],
    ) == (
        "2018-11-07",
        "2018-11-07",
        "scheduled__2018-11-07",
    )
    assert task.install_deps is False
    dbt_tasks = [
        t for t in dag.tasks if t.task_id.startswith("dbt_sparkify.") and not t.task_id.endswith("_done")
    ]
    assert all(t.emit_datasets is False for t in dbt_tasks)


def test_stage_events_is_mapped_over_the_runs_days(dag):
    task = dag.get_task("stage_events")
    assert task.upstream_task_ids == {"days", "wait_for_logs"}
    assert dag.get_task("wait_for_logs").upstream_task_ids == {"days"}
    assert dag.get_task("stage_songs").upstream_task_ids == {"wait_for_logs"}
    assert task.map_index_template == "{{ days_label }}"
    assert dag.get_task("summary").upstream_task_ids >= {"days"}


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [
        # The schedule and Airflow's own backfill: the day.
        ("2018-11-01T00:00:00+00:00", "2018-11-02T00:00:00+00:00", ["2018-11-01"]),
        # A run created while the schedule had no intervals (a point in time): the day of its logical date.
        ("2018-11-05T00:00:00+00:00", "2018-11-05T00:00:00+00:00", ["2018-11-05"]),
        ("2018-11-30T17:42:10+00:00", "2018-11-30T17:42:10+00:00", ["2018-11-30"]),
        (
            "2018-12-30T00:00:00+00:00",
            "2019-01-02T00:00:00+00:00",
            ["2018-12-30", "2018-12-31", "2019-01-01"],
        ),
    ],
)
def test_dbt_reads_the_days_the_run_stages(dag, start, end, days):
    """The first and last day dbt gets (rendered by Airflow) are the first and last day staged."""
    start, end = pendulum.parse(start), pendulum.parse(end)
    assert [day.isoformat() for day in run_days(start, end)] == days
    context = {
        "data_interval_start": start,
        "data_interval_end": end,
        "macros": {"timedelta": timedelta},
        "run_id": "manual",
    }
    task = dag.get_task("dbt_sparkify.dbt_producer_watcher")
    rendered = task.render_template(task.env, context)
    assert [rendered["SPARKIFY_RUN_DATE"], rendered["SPARKIFY_RUN_END_DATE"]] == [days[0], days[-1]]


@pytest.mark.parametrize(
    ("days", "max_tasks", "sizes"),
    [
        (1, 31, [1]),
        (7, 31, [1] * 7),
        (31, 31, [1] * 31),
        (32, 31, [2] + [1] * 30),
        (365, 31, [12] * 24 + [11] * 7),
    ],
)
def test_a_long_run_stages_consecutive_days_per_task(days, max_tasks, sizes):
    first = pendulum.date(2018, 11, 1)
    every = [first.add(days=offset) for offset in range(days)]
    staged = batches(every, max_tasks)
    assert [len(batch) for batch in staged] == sizes
    assert [day for batch in staged for day in batch] == every
    assert label([day.isoformat() for day in staged[0]]) == (
        "2018-11-01" if sizes[0] == 1 else f"2018-11-01 .. {staged[0][-1].isoformat()}"
    )


def test_a_run_covers_whole_days():
    with pytest.raises(IntervalError, match="must start and end at midnight UTC"):
        run_days(pendulum.parse("2018-11-01T06:00:00+00:00"), pendulum.parse("2018-11-03T00:00:00+00:00"))
    first, last = pendulum.date(2018, 11, 1), pendulum.date(2019, 10, 31)
    days = run_days(*interval(first, last))
    assert (days[0], days[-1], len(days)) == (first, last, 365)


def test_watcher_mode_keeps_a_task_per_node_and_only_the_producer_writes(local_dag, dag):
    producer = dag.get_task("dbt_sparkify.dbt_producer_watcher")
    assert isinstance(producer, DbtBuildProducer)
    assert producer.pool == "sparkify_duckdb"
    assert producer.upstream_task_ids == {"stage_events", "stage_songs"}
    # Every model, test and source of the LOCAL DAG is a task of its own here too: a sensor, outside the pool,
    # polling on its worker every second (no deferral: no triggerer to run).
    nodes = {task_id for task_id in local_dag.task_ids if task_id.startswith("dbt_sparkify.")}
    assert nodes <= set(dag.task_ids)
    watcher_only = {"dbt_sparkify.dbt_producer_watcher", "dbt_sparkify.dbt_producer_watcher_done"}
    assert set(dag.task_ids) == set(local_dag.task_ids) | watcher_only
    # The same edges, so a failure stops the same tasks (upstream_failed) in both modes.
    for task in local_dag.tasks:
        assert dag.get_task(task.task_id).upstream_task_ids - watcher_only == task.upstream_task_ids, (
            task.task_id
        )
    for task_id in nodes:
        sensor = dag.get_task(task_id)
        assert isinstance(sensor, (DbtRunSensor, DbtTestSensor, DbtSourceSensor)), task_id
        assert sensor.pool == "default_pool", task_id
        assert sensor.poke_interval == 1, task_id
        assert not sensor.deferrable, task_id
        assert sensor.mode == "poke", task_id
    # A test between two models has a task of its own; the producer pushes its result under its own key.
    detached = {dag.get_task(t).model_unique_id for t in relationship_tests()}
    assert len(detached) >= 5
    assert all(producer.tests_per_model[test] == [test] for test in detached)


def test_settings_choose_the_cosmos_execution_mode():
    from sparkify.settings import from_env

    assert from_env({}).dbt_execution == "watcher"
    assert from_env({"SPARKIFY_DBT_EXECUTION": "local"}).dbt_execution == "local"
    with pytest.raises(ValueError, match="SPARKIFY_DBT_EXECUTION must be one of local, watcher"):
        from_env({"SPARKIFY_DBT_EXECUTION": "kubernetes"})


def test_the_schedule_s_days_come_from_the_settings(monkeypatch, tmp_path):
    dag = parse(monkeypatch, tmp_path, SPARKIFY_START_DATE="2019-01-01", SPARKIFY_END_DATE="2019-12-31").dags[
        "sparkify_daily"
    ]
    settings_module.settings.cache_clear()
    assert dag.start_date == pendulum.datetime(2019, 1, 1, tz="UTC")
    assert dag.end_date == pendulum.datetime(2019, 12, 31, tz="UTC")
