"""Hostile files, on every warehouse that runs here: a record over the size limit, a record that is not UTF-8, a
record nested too deep, a reason too long. Each is quarantined on its own, the same way everywhere, with the
rest of its load staged; line numbers are those of the original file."""

from __future__ import annotations

import json
import shutil
from datetime import date

import pytest

from sparkify.lake import Lake
from sparkify.staging import rules, screen
from sparkify.warehouses import warehouse_for

DAY = date(2018, 11, 1)


@pytest.fixture
def lake(small_lake, tmp_path):
    return shutil.copytree(small_lake.root, tmp_path / "lake")


def quarantine(settings):
    with warehouse_for(settings).cursor() as cur:
        cur.execute(
            "select source_file, source_line, raw_text, reason from landing.staging_quarantine "
            "order by source_file, source_line"
        )
        return [tuple(row) for row in cur.fetchall()]


def staged_lines(settings):
    with warehouse_for(settings).cursor() as cur:
        cur.execute("select source_line from landing.staging_events order by 1")
        return [row[0] for row in cur.fetchall()]


def nested(depth: int) -> str:
    """A JSON array nested ``depth`` levels deep."""
    return "[" * depth + "]" * depth


def padded(record: dict, size: int) -> bytes:
    """``record`` as JSON, padded with spaces (still valid JSON) to ``size`` bytes."""
    text = json.dumps(record).encode()
    return text + b" " * (size - len(text))


def test_each_hostile_line_is_quarantined_alone(lake, make_settings):
    path = lake / Lake.log_key(DAY)
    lines = path.read_bytes().splitlines()
    first = json.loads(lines[0])
    hostile = {
        # line number in the new file: (bytes, expected reason; None = staged)
        2: (padded(first, rules.RECORD_LIMIT + 1), rules.too_large(rules.RECORD_LIMIT + 1)),
        3: (padded({**first, "itemInSession": 9001}, rules.RECORD_LIMIT), None),
        4: (
            b'{"artist": "Bj\xf6rk", "sessionId": 1}',
            "not UTF-8 text: byte 0xf6 at offset 14 (invalid start byte)",
        ),
        # The object is one level: an unknown field nested 100 more is too deep, 99 more is not.
        5: (json.dumps({**first, "mood": json.loads(nested(100))}).encode(), rules.TOO_DEEP),
        6: (json.dumps({**first, "itemInSession": 9002, "mood": json.loads(nested(99))}).encode(), None),
        7: (json.dumps({**first, "itemInSession": "x" * 20_000}).encode(), "clipped"),
        # Deeper than Python's own JSON parser can go.
        8: (f'{{"mood": {nested(100_000)}}}'.encode(), rules.TOO_DEEP),
    }
    new = [lines[0], *(hostile[n][0] for n in sorted(hostile)), *lines[1:]]
    path.write_bytes(b"\n".join(new) + b"\n")
    settings = make_settings(lake, SPARKIFY_MAX_BAD_RATIO="1")

    result = warehouse_for(settings).stage_events(DAY)

    refused = {n for n, (_, reason) in hostile.items() if reason}
    assert (result["records"], result["quarantined"]) == (len(new), len(refused))
    assert staged_lines(settings) == [n for n in range(1, len(new) + 1) if n not in refused]
    rows = {row[1]: row for row in quarantine(settings)}
    assert sorted(rows) == sorted(refused)
    assert all(row[0] == str(path) for row in rows.values())
    for number in (2, 4, 5, 8):
        assert rows[number][3] == hostile[number][1]
    assert rows[2][2] == new[1][: rules.RAW_TEXT_LIMIT].decode()
    assert rows[4][2] == '{"artist": "Bj\ufffdrk", "sessionId": 1}'
    assert len(rows[7][3]) == rules.RAW_TEXT_LIMIT
    assert rows[7][3].startswith("itemInSession: cannot cast 'xxx")
    assert len(rows[7][2]) == rules.RAW_TEXT_LIMIT


def test_each_hostile_song_file_is_quarantined_alone(lake, make_settings):
    songs = sorted((lake / "song_data").rglob("*.json"))
    song = json.loads(songs[0].read_text())
    songs[0].write_bytes(padded(song, rules.RECORD_LIMIT + 1))
    songs[1].write_bytes(b'{"song_id": "SO\xff", "title": "x"}')
    songs[2].write_text(json.dumps({**song, "extra": json.loads(nested(100))}))
    settings = make_settings(lake, SPARKIFY_MAX_BAD_RATIO="1")

    result = warehouse_for(settings).stage_songs()

    assert (result["files"], result["rows"], result["quarantined"]) == (len(songs), len(songs) - 3, 3)
    assert [(row[0], row[1], row[3]) for row in quarantine(settings)] == [
        (str(songs[0]), None, rules.too_large(rules.RECORD_LIMIT + 1)),
        (str(songs[1]), None, "not UTF-8 text: byte 0xff at offset 15 (invalid start byte)"),
        (str(songs[2]), None, rules.TOO_DEEP),
    ]


def test_a_clean_day_is_read_as_it_is(small_lake, tmp_path):
    path = small_lake.root / Lake.log_key(DAY)
    with screen.log_file(str(path), path) as screened:
        assert (screened.path, screened.refused) == (path, {})
        assert screened.lines == rules.line_count(path)


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ('{"a": [1, {"b": []}]}', 4),
        ('{"a": "[[[[[[", "b": "\\"[[["}', 1),  # brackets in strings, an escaped quote
        ("[[[", 3),  # not JSON: the brackets still count
        ("", 0),
    ],
)
def test_nesting_depth(text, depth):
    assert rules.nesting_depth(text) == depth
