"""Each warehouse stages a day of plain records by its fast path (DuckDB's JSON reader; PostgreSQL's SQL on the
copied lines) and any other day line by line: what lands is the same either way, line numbers included."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import date

import pytest

from sparkify.lake import Lake
from sparkify.staging import duckdb as duck
from sparkify.staging import postgres
from sparkify.staging.rules import Allowance
from sparkify.warehouses import warehouse_for

DAY = date(2018, 11, 1)
FAST = "every line is a plain record"
CHECKED = "checking line by line"


def stage(settings, fast: bool, caplog) -> tuple[list, list, list[str]]:
    """The rows and quarantine a day's load lands, and the path it took."""
    caplog.clear()
    lake = Lake(settings.lake)
    with caplog.at_level(logging.INFO, logger="sparkify.staging"):
        if settings.warehouse == "duckdb":
            with duck.connect(settings.duckdb_path) as con:
                duck.stage_events(
                    con, lake, DAY, settings.raw_schema, allowance=Allowance(ratio=1.0), fast=fast
                )
        else:
            postgres.stage_events(settings, lake, DAY, fast=fast)
    with warehouse_for(settings).cursor() as cur:
        cur.execute(
            "select * from landing.staging_events order by source_line",
        )
        rows = [row[:-1] for row in cur.fetchall()]  # without loaded_at
        cur.execute("select * from landing.staging_quarantine order by source_line")
        bad = [row[:-1] for row in cur.fetchall()]  # without quarantined_at
    paths = [message for message in caplog.messages if FAST in message or CHECKED in message]
    return rows, bad, paths


@pytest.fixture
def day_lines(small_lake, tmp_path, make_settings):
    lake = shutil.copytree(small_lake.root, tmp_path / "lake")
    path = lake / Lake.log_key(DAY)
    return make_settings(lake, SPARKIFY_MAX_BAD_RATIO="1"), path, path.read_text().splitlines()


def test_plain_records_take_the_fast_path(day_lines, caplog):
    settings, path, lines = day_lines
    event = json.loads(lines[0])
    odd = [
        {
            **event,
            "itemInSession": 902,
            "song": 'tab\tnew\nline back\\slash \u00e9 \u65e5\u672c \U0001f3b5 "q"',
        },
        {**event, "itemInSession": 903, "length": 10, "registration": -1.5e12, "sessionId": -12},
        {**event, "itemInSession": 904, "length": None, "song": None, "unknownField": {"a": 1}},
        {**event, "itemInSession": 905, "length": 0, "registration": -0.0, "status": 0},
        {
            **event,
            "itemInSession": 906,
            "length": 1e-300,
            "registration": 12345678901234567890,
            "ts": -(2**63),
        },
    ]
    # Windows line ends, a line with -0 as an integer, and no newline after the last line.
    text = "\r\n".join([*lines, *map(json.dumps, odd)])
    text += '\r\n{"ts": -0, "length": -0, "page": "NextSong"}'
    path.write_text(text)
    fast_rows, fast_bad, fast_path = stage(settings, True, caplog)
    checked_rows, checked_bad, checked_path = stage(settings, False, caplog)
    assert fast_path and FAST in fast_path[0], fast_path
    assert checked_path and CHECKED in checked_path[0]
    assert fast_rows == checked_rows
    assert [str(row) for row in fast_rows] == [str(row) for row in checked_rows]  # -0.0 is not 0.0
    assert fast_bad == checked_bad == []
    assert [row[-1] for row in fast_rows] == list(range(1, len(lines) + len(odd) + 2))


# Each kind of line, with the warehouses whose fast path takes it as a plain record (either way, what lands is
# what the line-by-line checks land). DuckDB's reader gives the same values as its checks for any JSON in a text
# column; PostgreSQL's text of a JSON number differs from Python's, and its text cannot hold NUL.
LINES = {
    "number in a text column": ('{"artist": 112, "ts": 1}', {"duckdb"}),
    "fraction in a text column": ('{"song": 1.50, "ts": 1}', {"duckdb"}),
    "exponent in a text column": ('{"userId": 1e2, "ts": 1}', {"duckdb"}),
    "boolean in a text column": ('{"auth": false, "ts": 1}', {"duckdb"}),
    "object in a text column": ('{"artist": {"x": [1, true, null]}, "ts": 1}', {"duckdb"}),
    "array in a text column": ('{"song": [1, "two"], "ts": 1}', {"duckdb"}),
    "NUL escape": ('{"song": "a\\u0000b", "ts": 1}', {"duckdb"}),
    "a lone carriage return": ('{"song": "a", "ts": 1}\r', {"duckdb"}),
    "duplicate key": ('{"ts": 1, "ts": 2}', {"postgres"}),
    "blank line": ("", set()),
    "blank with spaces": ("   \t", set()),
    "form feed": ("\f", set()),
    "fraction in an integer column": ('{"itemInSession": 3.5, "ts": 1}', set()),
    "whole fraction in an integer column": ('{"itemInSession": 4.0, "ts": 1}', set()),
    "exponent in an integer column": ('{"ts": 1e2}', set()),
    "boolean in an integer column": ('{"status": true}', set()),
    "boolean in a double column": ('{"length": false}', set()),
    "number in a string": ('{"sessionId": "42", "length": " 245.3 "}', set()),
    "hex in a string": ('{"sessionId": "0x10"}', set()),
    "integer out of range": ('{"status": 3000000000}', set()),
    "double out of range": ('{"length": 1e400}', set()),
    "NaN": ('{"length": NaN}', set()),
    "Infinity": ('{"registration": -Infinity}', set()),
    "empty object": ("{}", set()),
    "unknown fields only": ('{"color": "blue"}', set()),
    "array": ("[1, 2]", set()),
    "string": ('"text"', set()),
    "two objects on a line": ('{"ts": 1} {"ts": 2}', set()),
    "invalid JSON": ('{"ts": 1', set()),
    "object over two lines": ('{"ts": 1,\n"status": 200}', set()),
    "raw tab in a string": ('{"song": "a\tb", "ts": 1}', set()),
    "end-of-copy marker": ("\\.", set()),
    "control byte": ('{"song": "a\x01b\x02c", "ts": 1}', set()),
}


@pytest.mark.parametrize("kind", LINES)
def test_any_other_line_sends_the_day_through_the_checks_with_the_same_result(kind, day_lines, caplog):
    settings, path, lines = day_lines
    line, plain_on = LINES[kind]
    path.write_text("\n".join([*lines[:5], line, *lines[5:]]) + "\n")
    fast_rows, fast_bad, fast_path = stage(settings, True, caplog)
    checked_rows, checked_bad, _ = stage(settings, False, caplog)
    expected = FAST if settings.warehouse in plain_on else CHECKED
    assert fast_path and expected in fast_path[0], fast_path
    assert (fast_rows, fast_bad) == (checked_rows, checked_bad)
    assert len(fast_rows) + len(fast_bad) == len(lines) + line.count("\n") + 1


def test_a_byte_order_mark_sends_the_day_through_the_checks(day_lines, caplog):
    settings, path, lines = day_lines
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode())
    fast_rows, fast_bad, fast_path = stage(settings, True, caplog)
    assert fast_path and CHECKED in fast_path[0]
    assert (fast_rows, fast_bad) == stage(settings, False, caplog)[:2]
