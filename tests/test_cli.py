"""The developer commands that run without Airflow: stage one day, query the warehouse; the progress line."""

from __future__ import annotations

import pytest

from sparkify import cli
from sparkify import settings as settings_module
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
        f"staged {day_events:>8,} rows from 1 file(s) into raw.staging_events, 0 record(s) quarantined" in out
    )
    assert (
        cli.main(
            [
                "sql",
                "select cast(log_date as varchar) as day, count(*) as events from raw.staging_events "
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
    assert cli.progress_line(runs, total=5, failed_days=1) == (
        "runs done 2/5 (succeeded 1, failed 1), running 2018-11-03, 1 queued"
    )
