"""Staging on real files, on every warehouse that runs here: explicit types, a day replaced as a whole, in one
transaction; the same values whichever warehouse loads them."""

from __future__ import annotations

import shutil
from datetime import date

import pytest

from sparkify.lake import Lake, LakeError
from sparkify.warehouses import warehouse_for
from tests.conftest import read_events, read_songs

DAY1, DAY2 = date(2018, 11, 1), date(2018, 11, 2)
TYPES = {
    "duckdb": {
        "userid": "VARCHAR",
        "ts": "BIGINT",
        "sessionid": "BIGINT",
        "length": "DOUBLE",
        "log_date": "DATE",
    },
    "postgres": {
        "userid": "character varying",
        "ts": "bigint",
        "sessionid": "bigint",
        "length": "double precision",
        "log_date": "date",
    },
}


def query(settings, sql):
    with warehouse_for(settings).cursor() as cur:
        cur.execute(sql)
        return [tuple(row) for row in cur.fetchall()]


def test_a_day_lands_with_explicit_types(small_lake, make_settings, warehouse_name):
    settings = make_settings(small_lake.root)
    result = warehouse_for(settings).stage_events(DAY1)
    expected = [e for e in read_events(small_lake.root) if e["_day"] == "2018-11-01"]
    assert result["rows"] == len(expected)
    assert result["source"].endswith("log_data/2018/11/2018-11-01-events.json")
    types = dict(
        query(
            settings,
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'landing' and table_name = 'staging_events'",
        )
    )
    assert {column: types[column] for column in TYPES[warehouse_name]} == TYPES[warehouse_name]
    rows = query(
        settings,
        "select sessionid, iteminsession, userid, ts, source_line from landing.staging_events order by source_line",
    )
    assert [row[:4] for row in rows] == [
        (e["sessionId"], e["itemInSession"], e["userId"], e["ts"]) for e in expected
    ]
    assert [row[4] for row in rows] == list(range(1, len(expected) + 1))
    assert query(settings, "select count(*) from landing.staging_events where userid = ''")[0][0] == sum(
        e["userId"] == "" for e in expected
    )


def test_restaging_a_day_replaces_that_day_only(small_lake, make_settings):
    settings = make_settings(small_lake.root)
    warehouse_for(settings).stage_events(DAY1)
    warehouse_for(settings).stage_events(DAY2)
    before = query(settings, "select log_date, count(*) from landing.staging_events group by 1 order by 1")
    warehouse_for(settings).stage_events(DAY1)
    warehouse_for(settings).stage_events(DAY1)
    after = query(settings, "select log_date, count(*) from landing.staging_events group by 1 order by 1")
    assert after == before
    assert [day for day, _ in after] == [DAY1, DAY2]


def test_a_missing_day_names_the_expected_file(small_lake, make_settings):
    settings = make_settings(small_lake.root)
    with pytest.raises(LakeError, match=r"log_data/2018/11/2018-11-20-events\.json"):
        warehouse_for(settings).stage_events(date(2018, 11, 20))


def test_song_files_land_with_a_number_where_text_is_expected(small_lake, make_settings):
    settings = make_settings(small_lake.root)
    result = warehouse_for(settings).stage_songs()
    songs = read_songs(small_lake.root)
    assert result["rows"] == result["files"] == len(songs)
    numeric = [s for s in songs if isinstance(s["artist_name"], int)]
    assert numeric
    staged = query(
        settings, f"select artist_name from landing.staging_songs where song_id = '{numeric[0]['song_id']}'"
    )
    assert staged == [(str(numeric[0]["artist_name"]),)]
    assert query(settings, "select count(*) from landing.staging_songs where year = 0")[0][0] == sum(
        s["year"] == 0 for s in songs
    )
    non_ascii = next(s for s in songs if not str(s["artist_name"]).isascii() or not s["title"].isascii())
    staged = query(
        settings,
        f"select title, artist_name from landing.staging_songs where song_id = '{non_ascii['song_id']}'",
    )
    assert staged == [(non_ascii["title"], str(non_ascii["artist_name"]))]
    warehouse_for(settings).stage_songs()
    assert query(settings, "select count(*) from landing.staging_songs")[0][0] == len(songs)


def test_no_song_files_is_an_error_naming_the_folder(make_settings, tmp_path):
    (tmp_path / "empty" / "song_data").mkdir(parents=True)
    with pytest.raises(LakeError, match="song_data"):
        warehouse_for(make_settings(tmp_path / "empty")).stage_songs()


def test_the_day_key_is_the_bucket_layout():
    assert Lake.log_key(date(2018, 11, 5)) == "log_data/2018/11/2018-11-05-events.json"
    assert Lake.log_key(date(2019, 1, 31)) == "log_data/2019/01/2019-01-31-events.json"


def test_a_batch_of_days_loads_every_good_day_and_fails_naming_the_bad_one(
    small_lake, make_settings, warehouse_name, tmp_path
):
    """A long run's staging task takes consecutive days: a day missing its file fails, not retried, naming it,
    while the days around it load."""
    from airflow.sdk.exceptions import AirflowFailException

    from sparkify.warehouses import each_day

    lake = tmp_path / "lake"
    shutil.copytree(small_lake.root, lake)
    (lake / Lake.log_key(DAY2)).unlink()
    settings = make_settings(lake)
    warehouse = warehouse_for(settings)
    days = [DAY1.isoformat(), DAY2.isoformat(), "2018-11-03"]
    with pytest.raises(AirflowFailException) as error:
        each_day(days, lambda day: warehouse.stage_events(date.fromisoformat(day)))
    assert str(error.value).startswith(
        "1 of 3 days failed, the others loaded: 2018-11-02: LakeError: no event log for 2018-11-02: expected "
    )
    assert "(not retried: waiting cannot fix it)" in str(error.value)
    staged = query(
        settings, "select cast(log_date as varchar), count(*) from landing.staging_events group by 1"
    )
    assert sorted(day for day, _ in staged) == ["2018-11-01", "2018-11-03"]
    # One day: its own result, and its own error as it was.
    assert each_day(["2018-11-03"], lambda day: warehouse.stage_events(date.fromisoformat(day)))["rows"] > 0
    with pytest.raises(AirflowFailException, match=r"^LakeError: no event log for 2018-11-02"):
        each_day(["2018-11-02"], lambda day: warehouse.stage_events(date.fromisoformat(day)))
