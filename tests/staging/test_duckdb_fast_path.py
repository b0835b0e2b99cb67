"""DuckDB stages a day of plain records with its JSON reader, and any other day line by line: what lands is the
same either way, line numbers included."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import date

import pytest

from sparkify.lake import Lake
from sparkify.staging import duckdb as duck

DAY = date(2018, 11, 1)
FAST = "every line is a plain record"
CHECKED = "checking line by line"


def stage(lake_root, tmp_path, fast: bool, caplog) -> tuple[list, list, list[str]]:
    """The rows and quarantine a day's load lands, and the path it took."""
    caplog.clear()
    with (
        caplog.at_level(logging.INFO, logger="sparkify.staging.duckdb"),
        duck.connect(tmp_path / f"fast-{fast}.duckdb") as con,
    ):
        duck.stage_events(con, Lake(str(lake_root)), DAY, "raw", max_bad_ratio=1, fast=fast)
        rows = con.execute(
            "select * exclude (loaded_at) from raw.staging_events order by source_line"
        ).fetchall()
        bad = con.execute(
            "select * exclude (quarantined_at) from raw.staging_quarantine order by source_line"
        ).fetchall()
    paths = [message for message in caplog.messages if FAST in message or CHECKED in message]
    return rows, bad, paths


@pytest.fixture
def day_lines(small_lake, tmp_path):
    lake = shutil.copytree(small_lake.root, tmp_path / "lake")
    path = lake / Lake.log_key(DAY)
    return lake, path, path.read_text().splitlines()


def test_plain_records_with_any_json_in_text_columns_take_the_fast_path(day_lines, tmp_path, caplog):
    lake, path, lines = day_lines
    event = json.loads(lines[0])
    odd = [
        {**event, "itemInSession": 900, "artist": 112, "song": 1.50, "userId": 1e2},
        {**event, "itemInSession": 901, "artist": {"x": [1, True, None]}, "song": [1, "two"], "auth": False},
        {**event, "itemInSession": 902, "song": "tab\tnew\nline back\\slash \u00e9 \u65e5\u672c \U0001f3b5"},
        {**event, "itemInSession": 903, "length": 10, "registration": -1.5e12, "sessionId": -12},
        {**event, "itemInSession": 904, "length": None, "song": None, "unknownField": {"a": 1}},
    ]
    # Windows line ends, and no newline after the last line.
    path.write_text("\r\n".join([*lines, *map(json.dumps, odd)]))
    fast_rows, fast_bad, fast_path = stage(lake, tmp_path, True, caplog)
    checked_rows, checked_bad, checked_path = stage(lake, tmp_path, False, caplog)
    assert fast_path and FAST in fast_path[0]
    assert checked_path and CHECKED in checked_path[0]
    assert fast_rows == checked_rows
    assert fast_bad == checked_bad == []
    assert [row[-1] for row in fast_rows] == list(range(1, len(lines) + len(odd) + 1))


NOT_PLAIN = {
    "blank line": "",
    "blank with spaces": "   \t",
    "fraction in an integer column": '{"itemInSession": 3.5, "ts": 1}',
    "whole fraction in an integer column": '{"itemInSession": 4.0, "ts": 1}',
    "exponent in an integer column": '{"ts": 1e2}',
    "boolean in an integer column": '{"status": true}',
    "boolean in a double column": '{"length": false}',
    "number in a string": '{"sessionId": "42", "length": " 245.3 "}',
    "hex in a string": '{"sessionId": "0x10"}',
    "integer out of range": '{"status": 3000000000}',
    "NaN": '{"length": NaN}',
    "Infinity": '{"registration": -Infinity}',
    "empty object": "{}",
    "unknown fields only": '{"color": "blue"}',
    "array": "[1, 2]",
    "string": '"text"',
    "two objects on a line": '{"ts": 1} {"ts": 2}',
    "invalid JSON": '{"ts": 1',
    "object over two lines": '{"ts": 1,\n"status": 200}',
    "duplicate key": '{"ts": 1, "ts": 2}',
}


@pytest.mark.parametrize("kind", NOT_PLAIN)
def test_any_other_line_sends_the_day_through_the_checks_with_the_same_result(
    kind, day_lines, tmp_path, caplog
):
    lake, path, lines = day_lines
    path.write_text("\n".join([*lines[:5], NOT_PLAIN[kind], *lines[5:]]) + "\n")
    fast_rows, fast_bad, fast_path = stage(lake, tmp_path, True, caplog)
    checked_rows, checked_bad, _ = stage(lake, tmp_path, False, caplog)
    assert fast_path and CHECKED in fast_path[0], fast_path
    assert (fast_rows, fast_bad) == (checked_rows, checked_bad)
    assert len(fast_rows) + len(fast_bad) == len(lines) + NOT_PLAIN[kind].count("\n") + 1


def test_a_byte_order_mark_sends_the_day_through_the_checks(day_lines, tmp_path, caplog):
    lake, path, lines = day_lines
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode())
    fast_rows, fast_bad, fast_path = stage(lake, tmp_path, True, caplog)
    assert fast_path and CHECKED in fast_path[0]
    assert (fast_rows, fast_bad) == stage(lake, tmp_path, False, caplog)[:2]
