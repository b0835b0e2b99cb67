"""The developer commands that run without Airflow: stage one day, query the warehouse; the progress line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sparkify import cli
from sparkify import settings as settings_module
from sparkify.cli import stack_commands, watch
from tests.conftest import REPO, read_events


@pytest.fixture
def env(monkeypatch, tmp_path, small_lake):
    monkeypatch.setenv("SPARKIFY_HOME", str(REPO))
    monkeypatch.setenv("SPARKIFY_LAKE", str(small_lake.root))
    monkeypatch.setenv("SPARKIFY_DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    settings_module.settings.cache_clear()
    yield
    settings_module.settings.cache_clear()


def test_stage_then_query(env, small_lake, capsys):
    assert cli.main(["stage", "--date", "2018-11-02"]) == 0
    out = capsys.readouterr().out
    day_events = sum(e["_day"] == "2018-11-02" for e in read_events(small_lake.root))
    assert (
        f"staged {day_events:>8,} rows from 1 file(s) into landing.staging_events, 0 record(s) quarantined"
        in out
    )
    assert (
        cli.main(
            [
                "sql",
                "select cast(log_date as varchar) as day, count(*) as events from landing.staging_events "
                "group by 1",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["day", "events"]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == ["2018-11-02", str(day_events)]


def test_bad_dates_are_refused(env):
    with pytest.raises(SystemExit):
        cli.main(["backfill", "--start", "2018-11-05", "--end", "2018-11-01"])
    with pytest.raises(ValueError):
        cli.main(["stage", "--date", "2018-11-31"])


def test_progress_line():
    runs = [
        {"state": "success", "logical_date": "2018-11-01T00:00:00Z"},
        {"state": "failed", "logical_date": "2018-11-02T00:00:00Z"},
        {"state": "running", "logical_date": "2018-11-03T00:00:00Z"},
        {"state": "queued", "logical_date": "2018-11-04T00:00:00Z"},
    ]
    assert watch.progress_line(runs, total=5, failed_days=1) == (
        "runs done 2/5 (succeeded 1, failed 1), running 2018-11-03, 1 queued"
    )


def test_progress_of_a_run_of_several_days_names_its_days():
    week = {
        "state": "running",
        "logical_date": "2018-11-01T00:00:00Z",
        "data_interval_start": "2018-11-01T00:00:00Z",
        "data_interval_end": "2018-11-08T00:00:00Z",
    }
    line = watch.progress_line([week], total=2, failed_days=0, staged={"2018-11-01": (3, 7)})
    assert line == "runs done 0/2 (succeeded 0, failed 0), running 2018-11-01 .. 2018-11-07 (days staged 3/7)"


def test_a_mapped_staging_task_is_named_by_its_days_in_a_run_of_several():
    mapped = {"task_id": "stage_events", "map_index": 2, "rendered_map_index": "2018-11-03"}
    assert watch.task_name(mapped, "2018-11-01") == "stage_events[2018-11-03]"
    # A run of one day: the task, as before its staging was mapped.
    assert watch.task_name({**mapped, "map_index": 0}, "2018-11-03") == "stage_events"
    assert watch.task_name({"task_id": "summary", "map_index": -1}, "2018-11-01") == "summary"


@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("30", 30), ("all", None), ("ALL", None)])
def test_days_per_run(value, expected):
    assert cli.days_per_run(value) == expected


@pytest.mark.parametrize("value", ["0", "-3", "week", ""])
def test_days_per_run_refuses_anything_else(value):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match="whole number of days"):
        cli.days_per_run(value)


def test_a_range_is_cut_into_runs_in_date_order():
    from datetime import date

    from sparkify.cli.airflow_commands import day_ranges

    assert day_ranges("2018-11-01", "2018-11-08", 7) == [
        (date(2018, 11, 1), date(2018, 11, 7)),
        (date(2018, 11, 8), date(2018, 11, 8)),
    ]
    assert day_ranges("2018-11-01", "2019-10-31", None) == [(date(2018, 11, 1), date(2019, 10, 31))]
    assert len(day_ranges("2018-11-01", "2019-10-31", 30)) == 13


def test_stack_env_generates_secrets_once_and_keeps_them(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SPARKIFY_HOME", str(tmp_path))
    settings_module.settings.cache_clear()
    try:
        (tmp_path / ".env").write_text("WAREHOUSE_PASSWORD=mine\n")
        assert cli.main(["stack-env"]) == 0
        first = (tmp_path / ".env").read_text()
        assert cli.main(["stack-env"]) == 0
        assert (tmp_path / ".env").read_text() == first
    finally:
        settings_module.settings.cache_clear()
    values = dict(line.split("=", 1) for line in first.splitlines())
    assert values.keys() == {"AIRFLOW_UID", *stack_commands.STACK_SECRETS}
    assert values["WAREHOUSE_PASSWORD"] == "mine"
    assert all(
        len(values[name]) >= 16 for name in stack_commands.STACK_SECRETS if name != "WAREHOUSE_PASSWORD"
    )
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    out = capsys.readouterr().out
    # All but the kept password, plus AIRFLOW_UID; the second time, nothing.
    generated = len(stack_commands.STACK_SECRETS)
    assert (
        f"{generated} value(s) generated" in out
        and f"0 value(s) generated (none), {generated + 1} kept" in out
    )


def test_secret_files_are_created_private_never_chmod_ed(monkeypatch, tmp_path):
    """Created 0600 even with a umask that lets others read: never readable, not even until a chmod."""
    from sparkify.local_airflow import airflow_env

    def no_chmod(*_, **__):
        raise AssertionError("chmod after writing: the file was readable by others until then")

    monkeypatch.setattr(os, "chmod", no_chmod)
    monkeypatch.setattr(Path, "chmod", no_chmod)
    monkeypatch.setenv("SPARKIFY_HOME", str(tmp_path))
    settings_module.settings.cache_clear()
    home = tmp_path / "airflow"
    home.mkdir()
    (home / "config.env").write_text((REPO / "airflow" / "config.env").read_text())
    umask = os.umask(0)
    try:
        airflow_env(settings_module.settings(), home, 8080)
        assert cli.main(["stack-env"]) == 0
    finally:
        os.umask(umask)
        settings_module.settings.cache_clear()
    files = [home / "passwords.json", home / ".jwt_secret", home / ".api_secret_key", tmp_path / ".env"]
    assert {path.name: path.stat().st_mode & 0o777 for path in files} == {path.name: 0o600 for path in files}


def test_a_task_in_trouble_is_shown_with_its_try_the_next_try_and_the_error():
    config = settings_module.from_env({"SPARKIFY_RETRY_DELAY_SECONDS": "300"})
    ti = {"task_id": "stage_songs", "try_number": 2, "max_tries": 2, "end_date": "2018-11-15T10:00:00Z"}
    # The second try's back-off: 600 s, spread over [600, 1200) s by Airflow.
    assert watch.trouble_line(
        config, "2018-11-15", {**ti, "state": "up_for_retry"}, "OperationalError: x"
    ) == (
        "    2018-11-15 stage_songs try 2 of 3 failed, next try between 10:10:00 and 10:19:59 UTC: OperationalError: x"
    )
    assert watch.trouble_line(config, "2018-11-15", {**ti, "state": "failed"}, "E: x").endswith(
        "stage_songs failed on try 2 of 3, not retried: E: x"
    )
    assert watch.trouble_line(
        config, "2018-11-15", {**ti, "state": "failed", "try_number": 3}, "E: x"
    ).endswith("stage_songs failed on try 3 of 3 (the last): E: x")
