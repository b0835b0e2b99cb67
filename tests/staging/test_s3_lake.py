"""A lake in S3 (a real S3-compatible server on loopback) stages exactly like the same lake on disk."""

from __future__ import annotations

import json
from datetime import date

import pytest

from sparkify.lake import Lake, LakeError
from sparkify.warehouses import warehouse_for
from tests.conftest import read_events, s3_client


def test_s3_lake_stages_like_the_files(small_lake, s3_lake, make_settings):
    settings = make_settings(small_lake.root, SPARKIFY_LAKE=s3_lake)
    assert settings.lake == s3_lake
    events = warehouse_for(settings).stage_events(date(2018, 11, 2))
    songs = warehouse_for(settings).stage_songs()
    assert events["source"] == f"{s3_lake}/log_data/2018/11/2018-11-02-events.json"
    assert songs["source"] == f"{s3_lake}/song_data"

    day = [e for e in read_events(small_lake.root) if e["_day"] == "2018-11-02"]
    with warehouse_for(settings).cursor() as cur:
        cur.execute(
            "select sessionid, iteminsession, userid, ts, length, source_file from landing.staging_events"
        )
        staged = sorted((tuple(row) for row in cur.fetchall()), key=repr)
    assert staged == sorted(
        (
            (e["sessionId"], e["itemInSession"], e["userId"], e["ts"], e["length"], events["source"])
            for e in day
        ),
        key=repr,
    )

    files = {
        f"{s3_lake}/{path.relative_to(small_lake.root).as_posix()}": json.loads(
            path.read_text(encoding="utf-8")
        )
        for path in small_lake.root.glob("song_data/*/*/*/*.json")
    }
    with warehouse_for(settings).cursor() as cur:
        cur.execute("select source_file, song_id, artist_name, duration, year from landing.staging_songs")
        staged_songs = {row[0]: tuple(row[1:]) for row in cur.fetchall()}
    assert songs["files"] == len(files) > 100
    assert staged_songs == {
        uri: (song["song_id"], str(song["artist_name"]), song["duration"], song["year"])
        for uri, song in files.items()
    }


def test_unchanged_song_objects_are_not_fetched_again(s3_server, s3_lake, make_settings, small_lake):
    settings = make_settings(small_lake.root, SPARKIFY_LAKE=s3_lake)
    first = warehouse_for(settings).stage_songs()
    assert not first["unchanged"]
    assert warehouse_for(settings).stage_songs()["unchanged"]
    # One object written again with other content (a new ETag): the files are loaded again.
    bucket, prefix = Lake(s3_lake).bucket_and_prefix()
    key = Lake(s3_lake).song_listing().keys[0]
    song = json.loads((small_lake.root / key).read_text(encoding="utf-8"))
    s3_client(s3_server).put_object(
        Bucket=bucket, Key=f"{prefix}/{key}", Body=json.dumps({**song, "title": "Retitled"})
    )
    again = warehouse_for(settings).stage_songs()
    assert not again["unchanged"] and again["rows"] == first["rows"]
    with warehouse_for(settings).cursor() as cur:
        cur.execute(f"select title from landing.staging_songs where song_id = '{song['song_id']}'")
        assert cur.fetchall() == [("Retitled",)]


def test_a_missing_day_in_s3_names_the_uri(s3_lake, make_settings, small_lake):
    settings = make_settings(small_lake.root, SPARKIFY_LAKE=s3_lake)
    with pytest.raises(LakeError, match=rf"{s3_lake}/log_data/2018/11/2018-11-21-events\.json"):
        warehouse_for(settings).stage_events(date(2018, 11, 21))


def test_an_empty_prefix_has_no_song_files(s3_lake):
    with (
        pytest.raises(LakeError, match="no song files under s3://"),
        Lake(s3_lake + "/elsewhere").song_files(),
    ):
        pass


def test_only_s3_uris_are_lakes():
    from sparkify.settings import from_env

    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        from_env({"SPARKIFY_LAKE": "gs://bucket/lake"})


@pytest.mark.parametrize(
    "key",
    [
        "../../etc/passwd",
        "log_data/2018/11/*.json",
        "log_data/./x.json",
        "/log_data/x.json",
        "log_data/[ab].json",
    ],
)
def test_a_key_that_escapes_or_globs_is_refused(small_lake, make_settings, key):
    settings = make_settings(small_lake.root)
    with pytest.raises(ValueError, match="refused: a key is a plain path below the lake's root"):
        warehouse_for(settings).stage_events(date(2018, 11, 1), key)


def test_a_lake_prefix_that_escapes_or_globs_is_refused():
    from sparkify.settings import from_env

    for lake in ("s3://bucket/raw/../other", "s3://bucket/raw*"):
        with pytest.raises(ValueError, match="the lake's S3 prefix"):
            from_env({"SPARKIFY_LAKE": lake})


def test_a_song_object_whose_key_climbs_out_is_refused_before_any_download(s3_server, s3_lake):
    bucket, prefix = Lake(s3_lake).bucket_and_prefix()
    hostile = f"{prefix}/song_data/../../x/outside.json"
    s3_client(s3_server).put_object(Bucket=bucket, Key=hostile, Body=b"{}")
    assert any(o["Key"] == hostile for o in s3_client(s3_server).list_objects_v2(Bucket=bucket)["Contents"])
    with pytest.raises(ValueError, match=r"song file key 'song_data/\.\./\.\./x/outside\.json' refused"):
        Lake(s3_lake).song_listing()


def test_the_lake_says_which_days_logs_are_missing(s3_lake, small_lake):
    """What the scheduled run's wait asks (``sparkify.arrival``): on S3 through the provider's hook, and locally."""
    days = [date(2018, 11, 1), date(2018, 11, 3), date(2018, 11, 21)]
    assert Lake(s3_lake).missing_logs(days) == [date(2018, 11, 21)]
    assert Lake(str(small_lake.root)).missing_logs(days) == [date(2018, 11, 21)]
    assert Lake(s3_lake).log_where(date(2018, 11, 21)) == f"{s3_lake}/log_data/2018/11/2018-11-21-events.json"
    assert Lake(str(small_lake.root)).log_where(date(2018, 11, 21)) == str(
        small_lake.root / "log_data/2018/11/2018-11-21-events.json"
    )
