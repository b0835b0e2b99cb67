"""What staging accepts, casts and quarantines: one contract, applied in SQL on DuckDB and in Python on PostgreSQL.

A log line (or a whole song file) is a *record*. A record is quarantined, never loaded half, when it is:

- a blank line (``blank line``);
- not valid JSON, or more than one JSON value on the line / in the file (``not valid JSON``);
- valid JSON that is not an object (``not a JSON object``), or an object where no field of the schema has a
  value (``no field of the schema has a value``: ``{}``, or only unknown fields);
- an object with a field that cannot be cast to its column's type (``length: cannot cast 'abc' to double
  precision``; every such field is named, separated by ``; ``).

The casts (documented in docs/data-quality.md):

- text columns take any JSON scalar as its text (``112`` -> ``'112'``, ``true`` -> ``'true'``); an object or an
  array is kept as its JSON text;
- integer columns take a JSON integer, or a string holding one (``"42"``); a fraction (``3.5``), a boolean or an
  integer out of the column's range cannot be cast;
- double columns take a JSON number, or a string holding a decimal number (``"245.3"``, ``"1e3"``); ``NaN`` and
  ``Infinity`` (accepted as JSON tokens, as DuckDB's parser does) cannot be cast;
- a missing field or a JSON ``null`` is NULL; fields the schema does not know are ignored.

Before any of that, every record is screened (``sparkify.staging.screen``), reading at most ``RECORD_LIMIT`` bytes
of it: a record larger than that (``record of N bytes, above the 16 MiB limit``), one that is not UTF-8 text
(``not UTF-8 text: ...``) or one whose brackets nest deeper than ``MAX_DEPTH`` (``JSON nested deeper than 100
levels``) is quarantined the same way on every warehouse.

A load may quarantine up to its ``Allowance``: ``count`` records, or ``ratio`` of them, whichever is larger. Above
that, the load fails, changing nothing, with an error naming the file and the first bad records.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sparkify.staging.schema import Column, RawTable

INTEGER_PATTERN = r"\s*[-+]?[0-9]+\s*"
NUMBER_PATTERN = r"\s*[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?\s*"
RANGES = {"integer": (-(2**31), 2**31 - 1), "bigint": (-(2**63), 2**63 - 1)}
RAW_TEXT_LIMIT = 10_000
FIRST_BAD_SHOWN = 5
# The largest record read: a line, or a song file. A larger one is quarantined with its size, never read whole.
RECORD_LIMIT = 16 * 1024 * 1024
# The deepest nesting of JSON arrays and objects a record may have (the schema's records are flat).
MAX_DEPTH = 100

BLANK = "blank line"
EMPTY = "empty file"
NOT_JSON = "not valid JSON, or more than one JSON value"
NOT_OBJECT = "not a JSON object"
NO_FIELD = "no field of the schema has a value"
TOO_DEEP = f"JSON nested deeper than {MAX_DEPTH} levels"
NOT_UTF8 = "not UTF-8 text"


def too_large(size: int) -> str:
    return f"record of {size:,} bytes, above the {RECORD_LIMIT // (1024 * 1024)} MiB limit"


_INTEGER = re.compile(INTEGER_PATTERN, re.ASCII)
_NUMBER = re.compile(NUMBER_PATTERN, re.ASCII)
# What counts as blank: JSON's whitespace and the other ASCII spaces.
BLANK_CHARACTERS = " \t\r\n\f\v"


def cast_error(column: Column, text: str) -> str:
    return f"{column.json_key}: cannot cast '{text}' to {column.sql_type}"


@dataclass(frozen=True)
class Bad:
    """A quarantined record: where it was, what it held, why it was refused."""

    source_file: str
    line: int | None
    raw_text: str
    reason: str

    def describe(self) -> str:
        where = f"line {self.line}" if self.line is not None else self.source_file
        return f"{where}: {self.reason}"


class BadInputError(RuntimeError):
    """Too much of a load was refused: nothing was changed. Input that waiting cannot fix: never retried."""


@dataclass(frozen=True)
class Allowance:
    """How many of a load's records may be quarantined: up to ``count``, or ``ratio`` of them, whichever is
    larger. The count keeps one bad record among a few dozen from failing a load; the ratio scales with it."""

    count: int = 10
    ratio: float = 0.01

    def allowed(self, records: int) -> int:
        # In decimal: 0.29 x 100 is 28.999... in binary floating point.
        return max(self.count, math.floor(Decimal(repr(self.ratio)) * records))

    def describe(self, unit: str) -> str:
        return f"up to {self.count} bad {unit} or {self.ratio:.1%} of them, whichever is larger"

    @property
    def none(self) -> bool:
        """No record may be quarantined."""
        return self.count == 0 and self.ratio == 0


def check_allowance(
    source: str, records: int, bad: int, first_bad: Sequence[Bad], allowance: Allowance, unit: str = "lines"
) -> None:
    """Fail the load when more of its ``records`` were quarantined (``bad`` of them) than ``allowance`` allows."""
    allowed = allowance.allowed(records)
    if bad <= allowed:
        return
    shown = "; ".join(record.describe() for record in first_bad[:FIRST_BAD_SHOWN])
    more = f" (and {bad - FIRST_BAD_SHOWN} more)" if bad > FIRST_BAD_SHOWN else ""
    raise BadInputError(
        f"{source}: {bad} of {records} {unit} are bad ({bad / records:.1%}), above the {allowed} allowed "
        f"({allowance.describe(unit)}); nothing was loaded. First bad {unit}: {shown}{more}"
    )


def _as_text(value: object) -> str:
    """The text DuckDB's ``json_extract_string`` gives for a JSON value."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def cast_value(column: Column, value: object) -> tuple[object, bool]:
    """``(value cast to the column's type, ok)`` by the rules above; ``None`` casts to ``None``."""
    if value is None:
        return None, True
    if column.sql_type == "varchar":
        return _as_text(value), True
    text = _as_text(value)
    if column.sql_type in RANGES:
        if isinstance(value, bool) or not (isinstance(value, int) or _INTEGER.fullmatch(text)):
            return None, False
        number = int(value) if isinstance(value, int) else int(text.strip(BLANK_CHARACTERS))
        low, high = RANGES[column.sql_type]
        return (number, True) if low <= number <= high else (None, False)
    if isinstance(value, bool) or not (isinstance(value, int | float) or _NUMBER.fullmatch(text)):
        return None, False
    if isinstance(value, float) and not math.isfinite(value):
        return None, False
    return float(value) if isinstance(value, int | float) else float(text.strip(BLANK_CHARACTERS)), True


_STRING = re.compile(r'"(?:[^"\\]|\\.)*+"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def may_be_too_deep(text: str) -> bool:
    """Whether ``text`` has enough opening brackets to nest deeper than ``MAX_DEPTH`` (a cheap first check)."""
    return text.count("{") + text.count("[") > MAX_DEPTH


def nesting_depth(text: str) -> int:
    """How deep the brackets of ``text`` nest, outside its JSON strings (valid JSON or not)."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(0, depth - 1)
    return deepest


def parse_record(
    table: RawTable, text: str, blank: str = BLANK
) -> tuple[tuple[object, ...] | None, str | None]:
    """One record's typed values for ``table.columns``, or the reason it is quarantined (a screened record: at
    most ``RECORD_LIMIT`` bytes of UTF-8 text)."""
    if not text.strip(BLANK_CHARACTERS):
        return None, blank
    if may_be_too_deep(text) and nesting_depth(text) > MAX_DEPTH:
        return None, TOO_DEEP
    try:
        document = json.loads(text)
    except ValueError:
        return None, NOT_JSON
    if not isinstance(document, dict):
        return None, NOT_OBJECT
    if all(document.get(column.json_key) is None for column in table.columns):
        return None, NO_FIELD
    values, errors = [], []
    for column in table.columns:
        raw = document.get(column.json_key)
        value, ok = cast_value(column, raw)
        if not ok:
            errors.append(cast_error(column, _as_text(raw)))
        values.append(value)
    if errors:
        return None, "; ".join(errors)
    return tuple(values), None


def clip(text: str) -> str:
    return text[:RAW_TEXT_LIMIT]


def line_count(path: Path) -> int | None:
    """The file's lines as the checks count them (a final newline ends the last line); ``None`` for a file a
    database's JSON reader could read otherwise (empty, or starting with a byte-order mark). A fast path that
    reads as many records as there are lines has read each line as one record."""
    lines, last = 0, b""
    with path.open("rb") as fh:
        first = fh.read(3)
        if not first or first == b"\xef\xbb\xbf":
            return None
        fh.seek(0)
        while chunk := fh.read(1 << 24):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines if last == b"\n" else lines + 1
