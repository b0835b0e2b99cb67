"""A hostile lake, on every warehouse that runs here: bad records are quarantined with file, line, text and reason
(or fail the load above the threshold, changing nothing); castable drift is cast; nothing is lost or doubled."""

from __future__ import annotations

import json
import shutil
from datetime import date

import pytest

from sparkify.lake import Lake
from sparkify.staging import rules
from sparkify.warehouses import warehouse_for

DAY = date(2018, 11, 1)


def query(settings, sql):
    with warehouse_for(settings).cursor() as cur:
        cur.execute(sql)
        return [tuple(row) for row in cur.fetchall()]


def quarantine(settings):
    return query(
        settings,
        "select source_table, log_date, source_file, source_line, raw_text, reason "
        "from landing.staging_quarantine order by source_file, source_line",
    )


@pytest.fixture
def lake(small_lake, tmp_path):
    return shutil.copytree(small_lake.root, tmp_path / "lake")


def day_lines(lake) -> list[str]:
    return (lake / Lake.log_key(DAY)).read_text().splitlines()


def write_day(lake, lines: list[str]) -> str:
    path = lake / Lake.log_key(DAY)
    path.write_text("".join(f"{line}\n" for line in lines))
    return str(path)


def test_malformed_lines_are_quarantined_and_the_rest_loads(lake, make_settings):
    lines = day_lines(lake)
    good = len(lines)
    truncated = lines[3][: len(lines[3]) // 2]
    # Line numbers in the file: 2 (truncated), 5 (blank), 8 (array), 11 (number); the rest are the originals.
    corrupted = [*lines[:1], truncated, *lines[1:3], "", *lines[3:5], "[1, 2]", *lines[5:7], "42", *lines[7:]]
    source = write_day(lake, corrupted)
    settings = make_settings(lake, SPARKIFY_MAX_BAD_RATIO="0.05")

    result = warehouse_for(settings).stage_events(DAY)

    assert (result["rows"], result["quarantined"], result["records"]) == (good, 4, good + 4)
    assert quarantine(settings) == [
        ("staging_events", DAY, source, 2, truncated, rules.NOT_JSON),
        ("staging_events", DAY, source, 5, "", rules.BLANK),
        ("staging_events", DAY, source, 8, "[1, 2]", rules.NOT_OBJECT),
        ("staging_events", DAY, source, 11, "42", rules.NOT_OBJECT),
    ]
    staged = query(
        settings, "select sessionid, iteminsession, source_line from landing.staging_events order by 3"
    )
    originals = [json.loads(line) for line in lines]
    assert [row[:2] for row in staged] == [(e["sessionId"], e["itemInSession"]) for e in originals]
    bad_numbers = {2, 5, 8, 11}
    assert [row[2] for row in staged] == [n for n in range(1, good + 5) if n not in bad_numbers]


def test_above_the_threshold_the_load_fails_naming_the_file_and_lines_and_changes_nothing(
    lake, make_settings
):
    settings = make_settings(lake, SPARKIFY_MAX_BAD_RECORDS="2")
    warehouse_for(settings).stage_events(DAY)
    before = query(settings, "select count(*), sum(ts) from landing.staging_events")
    lines = day_lines(lake)
    # Up to 2 bad lines, or 1 % of them (2 of ~240): 3 are too many.
    source = write_day(lake, ["{oops", *lines[:10], "", *lines[10:], "not json"])
    with pytest.raises(rules.BadInputError) as failure:
        warehouse_for(settings).stage_events(DAY)
    message = str(failure.value)
    assert source in message
    assert f"3 of {len(lines) + 3} lines are bad" in message
    assert "above the 2 allowed (up to 2 bad lines or 1.0% of them, whichever is larger)" in message
    assert (
        f"line 1: {rules.NOT_JSON}; line 12: {rules.BLANK}; line {len(lines) + 3}: {rules.NOT_JSON}"
        in message
    )
    assert query(settings, "select count(*), sum(ts) from landing.staging_events") == before
    assert quarantine(settings) == []


def most_allowed(count: int, percent: int, good: int) -> int:
    """The most bad records a load of ``good`` valid ones may add: the largest ``bad`` with
    ``bad <= max(count, (good + bad) * percent / 100)``, by integer arithmetic."""
    bad = count
    while (bad + 1) * 100 <= percent * (good + bad + 1):
        bad += 1
    return bad


@pytest.mark.parametrize(
    ("count", "percent", "wins"), [(10, 1, "count"), (1, 4, "ratio")], ids=["count-wins", "ratio-wins"]
)
def test_the_allowance_at_both_edges(lake, make_settings, count, percent, wins):
    lines = day_lines(lake)
    allowed = most_allowed(count, percent, len(lines))
    # Each edge is the one the test means: the count alone, or a share above the count.
    assert (allowed == count) == (wins == "count") and allowed >= 2
    settings = make_settings(
        lake, SPARKIFY_MAX_BAD_RECORDS=str(count), SPARKIFY_MAX_BAD_RATIO=str(percent / 100)
    )
    write_day(lake, [*lines, *(["{"] * allowed)])
    result = warehouse_for(settings).stage_events(DAY)
    assert (result["rows"], result["quarantined"]) == (len(lines), allowed)
    write_day(lake, [*lines, *(["{"] * (allowed + 1))])
    with pytest.raises(
        rules.BadInputError, match=f"{allowed + 1} of {len(lines) + allowed + 1} lines are bad"
    ):
        warehouse_for(settings).stage_events(DAY)
    assert query(settings, "select count(*) from landing.staging_quarantine") == [(allowed,)]


def test_the_song_files_allowance_at_its_edge(lake, make_settings):
    songs = sorted((lake / "song_data").rglob("*.json"))
    count = 5
    settings = make_settings(lake, SPARKIFY_MAX_BAD_RECORDS=str(count))
    assert len(songs) * 0.01 < count  # the count is the edge
    for path in songs[:count]:  # each holding two JSON objects
        path.write_text(path.read_text() + "\n{}")
    result = warehouse_for(settings).stage_songs()
    assert (result["rows"], result["quarantined"]) == (len(songs) - count, count)
    songs[count].write_text("{")
    with pytest.raises(rules.BadInputError, match=f"{count + 1} of {len(songs)} song files are bad"):
        warehouse_for(settings).stage_songs()
    assert query(settings, "select count(*) from landing.staging_songs") == [(len(songs) - count,)]


def test_type_drift_is_cast_or_quarantined_field_by_field(lake, make_settings):
    template = json.loads(day_lines(lake)[0])
    drifted = [
        {**template, "itemInSession": 1001, "artist": 112},  # number where text is expected
        {**template, "itemInSession": 1002, "length": "245.3", "sessionId": "77"},  # text where numbers are
        {k: v for k, v in template.items() if k != "song"} | {"itemInSession": 1003},  # a missing field
        {**template, "itemInSession": 1004, "mood": "happy"},  # an unknown field
        {**template, "itemInSession": 1005, "length": "long", "sessionId": 3.5},  # cannot be cast
        {**template, "itemInSession": "9" * 12},  # out of the integer range
    ]
    source = write_day(lake, [json.dumps(e) for e in drifted])
    settings = make_settings(lake, SPARKIFY_MAX_BAD_RATIO="1")

    result = warehouse_for(settings).stage_events(DAY)

    assert (result["rows"], result["quarantined"]) == (4, 2)
    rows = query(
        settings,
        "select iteminsession, artist, length, sessionid, song from landing.staging_events order by iteminsession",
    )
    assert rows == [
        (1001, "112", template["length"], template["sessionId"], template["song"]),
        (1002, template["artist"], 245.3, 77, template["song"]),
        (1003, template["artist"], template["length"], template["sessionId"], None),
        (1004, template["artist"], template["length"], template["sessionId"], template["song"]),
    ]
    assert [(row[3], row[5]) for row in quarantine(settings)] == [
        (5, "length: cannot cast 'long' to double precision; sessionId: cannot cast '3.5' to bigint"),
        (6, f"itemInSession: cannot cast '{'9' * 12}' to integer"),
    ]
    assert all(row[2] == source for row in quarantine(settings))


def test_an_empty_day_file_is_a_day_without_events(lake, make_settings):
    write_day(lake, [])
    settings = make_settings(lake)
    result = warehouse_for(settings).stage_events(DAY)
    assert (result["rows"], result["records"], result["quarantined"]) == (0, 0, 0)
    assert query(settings, "select count(*) from landing.staging_events") == [(0,)]


def test_bad_song_files_are_quarantined_not_fatal(lake, make_settings):
    songs = sorted((lake / "song_data").rglob("*.json"))
    two_objects, not_json = songs[0], songs[1]
    kept = {json.loads(path.read_text())["song_id"] for path in songs[2:]}
    two_objects.write_text(two_objects.read_text().strip() + "\n" + songs[2].read_text())
    not_json.write_text("<html>503 Service Unavailable</html>")
    settings = make_settings(lake)

    result = warehouse_for(settings).stage_songs()

    assert (result["files"], result["rows"], result["quarantined"]) == (len(songs), len(songs) - 2, 2)
    rows = quarantine(settings)
    assert [(r[0], r[1], r[2], r[3], r[5]) for r in rows] == [
        ("staging_songs", None, str(path), None, rules.NOT_JSON) for path in (two_objects, not_json)
    ]
    assert rows[1][4] == "<html>503 Service Unavailable</html>"
    staged = [row[0] for row in query(settings, "select song_id from landing.staging_songs")]
    assert sorted(staged) == sorted(kept)


def test_restaging_replaces_the_quarantine_too(lake, make_settings):
    lines = day_lines(lake)
    write_day(lake, [*lines, "{"])
    settings = make_settings(lake)
    warehouse_for(settings).stage_events(DAY)
    warehouse_for(settings).stage_events(DAY)
    assert len(quarantine(settings)) == 1
    write_day(lake, lines)
    warehouse_for(settings).stage_events(DAY)
    assert quarantine(settings) == []
