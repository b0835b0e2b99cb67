"""The deadline alert's text: what a late run waits for, from the lake as it is."""

from __future__ import annotations

from datetime import date

from sparkify.deadline import as_datetime, run_days_of, waiting_for
from sparkify.settings import from_env
from tests.conftest import REPO


def test_a_late_run_names_the_files_it_waits_for_or_itself(small_lake):
    settings = from_env({"SPARKIFY_HOME": str(REPO), "SPARKIFY_LAKE": str(small_lake.root)})
    run = {
        "data_interval_start": "2018-11-03T00:00:00+00:00",
        "data_interval_end": "2018-11-05T00:00:00+00:00",
    }
    days = run_days_of(run)
    assert days == [date(2018, 11, 3), date(2018, 11, 4)]
    where = small_lake.root / "log_data/2018/11/2018-11-04-events.json"
    assert waiting_for(settings, days, "running") == f"the event log of 2018-11-04 at {where}"
    assert waiting_for(settings, days[:1], "running") == "the run (running): its files are in the lake"


def test_a_lake_that_does_not_answer_does_not_stop_the_alert(monkeypatch):
    settings = from_env({"SPARKIFY_HOME": str(REPO), "SPARKIFY_LAKE": "s3://sparkify-unreachable/raw"})
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT", '{"conn_type": "aws", "extra": {"endpoint_url": "http://127.0.0.1:9"}}'
    )
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    said = waiting_for(settings, [date(2018, 11, 4)], "running")
    assert said.startswith("unknown: the lake did not answer (")


def test_the_deadline_reads_the_same_from_either_executor():
    from datetime import UTC, datetime

    local = datetime(2026, 12, 7, 3, tzinfo=UTC)
    assert as_datetime(local) == as_datetime("2026-12-07T03:00:00Z") == local
