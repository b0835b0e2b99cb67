"""Bad input on Redshift, at parity with the other warehouses: the records COPY rejects are read from
stl_load_errors into the quarantine table; above the allowance the day fails with the same error and nothing is
published."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from airflow.sdk.exceptions import AirflowFailException

from sparkify import settings as settings_module
from sparkify.datagen import generate
from sparkify.staging import rules
from tests.redshift.conftest import RedshiftRun, redshift_run_on
from tests.redshift.flow import run_task
from tests.redshift.shim import LoadError

pytestmark = pytest.mark.timeout(600)

DAY = "2018-11-01"
BAD_LINES = {
    3: "this is not JSON",
    5: json.dumps({"sessionId": 1, "itemInSession": "abc", "page": "Home", "ts": 1541030400000}),
    8: '["an", "array"]',
}
NON_UTF8_LINE = 11
BAD_SONG = "song_data/B/A/D/TRBADSONG00000001.json"


@pytest.fixture(scope="module")
def bad_lake(tmp_path_factory):
    lake = generate(tmp_path_factory.mktemp("bad-lake") / "lake", scale=1, seed=5, days=1).root
    log = lake / "log_data" / "2018" / "11" / f"{DAY}-events.json"
    lines = log.read_bytes().split(b"\n")
    for number, text in sorted(BAD_LINES.items()):
        lines.insert(number - 1, text.encode())
    lines.insert(
        NON_UTF8_LINE - 1, b'{"artist": "Bj\xf6rk", "sessionId": 2, "itemInSession": 1, "page": "NextSong"}'
    )
    log.write_bytes(b"\n".join(lines))
    song = lake / BAD_SONG
    song.parent.mkdir(parents=True)
    song.write_text(json.dumps({"song_id": "SOBAD", "title": "Bad", "year": "nineteen", "num_songs": 1}))
    return lake


@pytest.fixture(scope="module")
def run(postgres_server, s3_server, tmp_path_factory, bad_lake) -> Iterator[RedshiftRun]:
    yield from redshift_run_on(
        s3_server,
        tmp_path_factory,
        ((DAY,),),
        lake=bad_lake,
        SPARKIFY_MAX_BAD_RATIO="0.05",
        SPARKIFY_MAX_BAD_RECORDS="0",
    )


def test_rejected_lines_and_song_files_are_quarantined(run, bad_lake):
    lake_uri = run.settings.lake
    with run.cursor() as cur:
        cur.execute(
            "select source_table, cast(log_date as varchar), source_file, source_line, raw_text, reason "
            "from landing.staging_quarantine order by source_table, source_line"
        )
        rows = cur.fetchall()
    events = [row for row in rows if row[0] == "staging_events"]
    songs = [row for row in rows if row[0] == "staging_songs"]
    log_uri = f"{lake_uri}/log_data/2018/11/{DAY}-events.json"
    assert [(row[1], row[2], row[3]) for row in events] == [
        (DAY, log_uri, line) for line in sorted([*BAD_LINES, NON_UTF8_LINE])
    ]
    assert [row[4] for row in events if row[3] in BAD_LINES] == [
        BAD_LINES[line] for line in sorted(BAD_LINES)
    ]
    # stl_load_errors shows multi-byte characters as periods.
    assert next(row[4] for row in events if row[3] == NON_UTF8_LINE).startswith('{"artist": "Bj.')
    assert all(row[5] for row in events)
    assert [(row[1], row[2], row[3]) for row in songs] == [(None, f"{lake_uri}/{BAD_SONG}", None)]
    assert "nineteen" in songs[0][4]


def test_the_good_records_are_all_staged(run, bad_lake):
    log = bad_lake / "log_data" / "2018" / "11" / f"{DAY}-events.json"
    good_lines = sum(1 for line in log.read_bytes().split(b"\n") if line.strip()) - len(BAD_LINES) - 1
    song_files = len(list(bad_lake.glob("song_data/*/*/*/*.json")))
    with run.cursor() as cur:
        cur.execute("select count(*) from landing.staging_events where log_date = %s", [DAY])
        assert cur.fetchone() == (good_lines,)
        cur.execute("select count(*), count(*) filter (where song_id = 'SOBAD') from landing.staging_songs")
        assert cur.fetchone() == (song_files - 1, 0)
    assert run.days[0].results[f"stage_events[{DAY}]"]["quarantined"] == len(BAD_LINES) + 1
    assert run.days[0].results[f"stage_events[{DAY}]"]["records"] == good_lines + len(BAD_LINES) + 1


def _staged(run: RedshiftRun) -> tuple:
    with run.cursor() as cur:
        cur.execute("select count(*), sum(ts) from landing.staging_events")
        events = cur.fetchone()
        cur.execute("select count(*) from landing.staging_quarantine")
        return events, cur.fetchone()


def test_above_the_allowance_the_day_fails_and_nothing_is_published(run, monkeypatch):
    before = _staged(run)
    monkeypatch.setenv("SPARKIFY_MAX_BAD_RATIO", "0.01")
    settings_module.settings.cache_clear()
    try:
        run_task(run.shim, "prepare", DAY)
        # Airflow's non-retryable failure, over the project's own error.
        with pytest.raises(AirflowFailException) as error:
            run_task(run.shim, "stage_events", DAY)
    finally:
        settings_module.settings.cache_clear()
    assert isinstance(error.value.__cause__, rules.BadInputError)
    message = str(error.value.__cause__)
    assert message.startswith(f"{run.settings.lake}/log_data/2018/11/{DAY}-events.json: 4 of ")
    assert (
        "allowed (up to 0 bad lines or 1.0% of them, whichever is larger); nothing was loaded. "
        "First bad lines: line 3: "
    ) in message
    assert _staged(run) == before


def test_with_no_allowance_copy_stops_at_the_first_rejected_record(run, monkeypatch):
    monkeypatch.setenv("SPARKIFY_MAX_BAD_RATIO", "0")
    monkeypatch.setenv("SPARKIFY_MAX_BAD_RECORDS", "0")
    settings_module.settings.cache_clear()
    try:
        run_task(run.shim, "prepare", DAY)
        with pytest.raises(LoadError, match="MAXERROR 0"):
            run_task(run.shim, "stage_events", DAY)
    finally:
        settings_module.settings.cache_clear()


def test_a_missing_day_file_fails_at_once_naming_it(run):
    missing = "2018-11-20"
    before = len(run.shim.recorder.statements)
    with pytest.raises(
        AirflowFailException, match=rf"LakeError: no event log for {missing}: expected s3://"
    ) as error:
        run_task(run.shim, "stage_events", missing)
    assert f"log_data/2018/11/{missing}-events.json (not retried" in str(error.value)
    assert len(run.shim.recorder.statements) == before  # no COPY was sent
