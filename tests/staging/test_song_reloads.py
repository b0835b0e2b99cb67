"""Song files that have not changed since the last load are not loaded again; any change to them, to the rows
they landed or to the staging contract loads them again."""

from __future__ import annotations

import json
import shutil

from sparkify.staging import schema
from sparkify.warehouses import warehouse_for


def query(settings, sql):
    with warehouse_for(settings).cursor() as cur:
        cur.execute(sql)
        return [tuple(row) for row in cur.fetchall()]


def loaded_at(settings):
    return query(settings, "select min(loaded_at), max(loaded_at), count(*) from landing.staging_songs")[0]


def test_unchanged_song_files_are_kept_and_any_change_reloads_them(small_lake, make_settings, tmp_path):
    lake = shutil.copytree(small_lake.root, tmp_path / "lake")
    settings = make_settings(lake)
    first = warehouse_for(settings).stage_songs()
    assert not first["unchanged"]
    landed = loaded_at(settings)
    assert landed[2] == first["rows"] > 100
    assert query(settings, "select source_table, files_read, rows_loaded from landing.staging_loads") == [
        (schema.SONGS.name, first["files"], first["rows"])
    ]

    again = warehouse_for(settings).stage_songs()
    assert again["unchanged"]
    assert {k: v for k, v in again.items() if k != "unchanged"} == {
        k: v for k, v in first.items() if k != "unchanged"
    }
    assert loaded_at(settings) == landed, "the rows were loaded again"

    # A file's content changed: loaded again, with the new value.
    song_file = sorted(lake.glob("song_data/*/*/*/*.json"))[0]
    song = json.loads(song_file.read_text())
    song_file.write_text(json.dumps({**song, "title": "A New Title"}))
    changed = warehouse_for(settings).stage_songs()
    assert not changed["unchanged"]
    assert query(
        settings, f"select title from landing.staging_songs where song_id = '{song['song_id']}'"
    ) == [("A New Title",)]
    assert warehouse_for(settings).stage_songs()["unchanged"]

    # A file removed, then one added: the rows follow.
    song_file.unlink()
    assert warehouse_for(settings).stage_songs()["rows"] == first["rows"] - 1
    song_file.write_text(json.dumps(song))
    assert warehouse_for(settings).stage_songs()["rows"] == first["rows"]
    assert query(
        settings, f"select title from landing.staging_songs where song_id = '{song['song_id']}'"
    ) == [(song["title"],)]


def test_rows_lost_since_the_last_load_or_a_forced_reload_load_the_files_again(
    small_lake, make_settings, tmp_path
):
    settings = make_settings(small_lake.root)
    first = warehouse_for(settings).stage_songs()
    with warehouse_for(settings).cursor(read_only=False) as cur:
        cur.execute(
            "delete from landing.staging_songs where song_id in (select song_id from landing.staging_songs limit 3)"
        )
    reloaded = warehouse_for(settings).stage_songs()
    assert not reloaded["unchanged"]
    assert loaded_at(settings)[2] == first["rows"]

    with warehouse_for(settings).cursor(read_only=False) as cur:
        cur.execute("delete from landing.staging_loads")
    assert not warehouse_for(settings).stage_songs()["unchanged"]
    assert warehouse_for(settings).stage_songs()["unchanged"]

    # Another allowed bad ratio is another contract: loaded again.
    stricter = make_settings(small_lake.root, SPARKIFY_MAX_BAD_RATIO="0.001")
    assert not warehouse_for(stricter).stage_songs()["unchanged"]
