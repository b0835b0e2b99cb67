"""A Redshift stand-in for tests: a ``redshift_connector``-shaped connection that records every statement the
project's code sends (the Airflow hook, dbt-redshift) and then runs it on a real PostgreSQL database.

Only what PostgreSQL cannot run is replaced, each replacement listed here:

- ``COPY ... FROM 's3://...'`` is a load of the same S3 objects (every key under the prefix) through the same
  mapping (the JSONPaths file, or ``auto ignorecase``), by the rules below, into the same table;
- Redshift's table attributes (``diststyle``, ``distkey``, ``sortkey``, ``backup``, ``encode``) are dropped;
- ``getdate()``, ``pg_get_late_binding_view_cols()``, ``stl_load_errors``, ``svv_table_info`` and
  ``svv_external_columns`` exist as small PostgreSQL objects (``SHIM_SQL``), the last one reached through
  ``public`` instead of ``pg_catalog``.

The COPY emulation follows Redshift's documented behaviour for JSON: objects are read one after the other
(blank lines between them are whitespace, not records); missing keys and JSON nulls load NULL; a record that
is not a JSON object, that has a value its column's type cannot hold (the project's casting rules,
``sparkify.staging.rules``), a text longer than its varchar's bytes, or invalid UTF-8, is rejected: one row in
``stl_load_errors`` (``char`` columns, cut and padded as Redshift's are; multi-byte characters of ``raw_line``
shown as periods), written outside the transaction as Redshift's system log is. More rejects than
``MAXERROR`` fail the COPY. Where Redshift's own parser differs from this model, only a real cluster shows it
(docs/warehouses.md: Redshift).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from sparkify.staging import rules, schema

SHIM_SQL = """
create or replace function public.getdate() returns timestamp language sql as 'select localtimestamp';
create or replace function public.pg_get_late_binding_view_cols() returns setof record language sql
    as 'select null::name, null::name, null::name, null::varchar, null::integer where false';
create table if not exists public.stl_load_errors (
    tbl integer, starttime timestamp, filename char(256), line_number bigint, colname char(127),
    raw_line char(1024), err_code integer, err_reason char(100)
);
create or replace view public.svv_external_columns as
    select null::varchar as schemaname, null::varchar as tablename, null::varchar as columnname,
        null::varchar as external_type, null::integer as columnnum, null::integer as part_key,
        null::varchar as is_nullable
    where false;
create or replace view public.svv_table_info as
    select null::varchar as database, null::varchar as "schema", null::oid as table_id, null::varchar as "table",
        null::varchar as encoded, null::varchar as diststyle, null::varchar as sortkey1,
        null::integer as max_varchar, null::varchar as sortkey1_enc, null::integer as sortkey_num,
        null::bigint as size, null::numeric as pct_used, null::numeric as unsorted, null::numeric as stats_off,
        null::numeric as tbl_rows, null::numeric as skew_sortkey1, null::numeric as skew_rows
    where false;
"""

_TABLE_ATTRIBUTES = re.compile(
    r"\b(diststyle\s+(all|even|key|auto)|distkey\s*\(\s*\"?\w+\"?\s*\)|(compound\s+|interleaved\s+)?sortkey"
    r"\s*\([^)]*\)|backup\s+(yes|no)|encode\s+\w+)",
    re.IGNORECASE,
)
_COPY = re.compile(
    r"^\s*copy\s+(?P<table>[\w.\"]+)\s*\((?P<columns>[^)]*)\)\s*from\s+'(?P<uri>s3://[^']+)'\s+credentials\s+'[^']*'"
    r"(?P<options>.*?);?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_JSON_FORMAT = re.compile(r"format\s+as\s+json\s+'(?P<format>[^']+)'", re.IGNORECASE)
_MAXERROR = re.compile(r"maxerror\s+(?:as\s+)?(?P<n>\d+)", re.IGNORECASE)
_JSONPATH = re.compile(r"^\$\['(?P<key>[^']+)'\]$")


@dataclass(frozen=True)
class Statement:
    """One statement as the project's code sent it (parameters bound as literals), and who sent it."""

    origin: str
    sql: str


@dataclass
class Recorder:
    """Every statement sent through any connection of the stand-in, in order."""

    origin: str = "?"
    statements: list[Statement] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sql: str) -> None:
        with self.lock:
            self.statements.append(Statement(self.origin, sql))


class LoadError(Exception):
    """A COPY that rejected more records than its MAXERROR (Redshift: "Load into table ... failed")."""


def translate(sql: str) -> str:
    """The statement as PostgreSQL runs it (see the module's doc)."""
    sql = _TABLE_ATTRIBUTES.sub("", sql)
    return sql.replace("pg_catalog.svv_external_columns", "public.svv_external_columns")


class RedshiftOnPostgres:
    """Connections that look like ``redshift_connector``'s, all on one PostgreSQL database."""

    def __init__(self, dsn: dict[str, Any], s3_client: Any) -> None:
        self.dsn = dsn
        self.s3 = s3_client
        self.recorder = Recorder()
        with self._pg(autocommit=True) as con, con.cursor() as cur:
            cur.execute(SHIM_SQL)

    def _pg(self, autocommit: bool = False, user: str | None = None) -> psycopg2.extensions.connection:
        con = psycopg2.connect(**{**self.dsn, **({"user": user} if user else {})})
        con.autocommit = autocommit
        return con

    def connect(self, user: str | None = None, **_: Any) -> RecordingConnection:
        """A connection as the stand-in's own PostgreSQL login, or as ``user`` when the project created that
        login (as it does the one `make sql` reads with): its privileges are then the login's own."""
        with self._pg(autocommit=True) as con, con.cursor() as cur:
            cur.execute("select 1 from pg_roles where rolname = %s and rolcanlogin and not rolsuper", [user])
            created = cur.fetchone() is not None
        con.close()
        return RecordingConnection(self, self._pg(user=user if created else None))

    # COPY ---------------------------------------------------------------------------------------------------

    def copy(self, cur: psycopg2.extensions.cursor, statement: str) -> int:
        match = _COPY.match(statement)
        if not match:
            raise ValueError(f"the stand-in cannot run this COPY: {statement}")
        table = match["table"].replace('"', "")
        columns = [name.strip() for name in match["columns"].split(",")]
        options = match["options"]
        json_format = _JSON_FORMAT.search(options)["format"]
        max_errors = int(m["n"]) if (m := _MAXERROR.search(options)) else 0
        keys = self._mapping(json_format, columns)
        types = self._column_types(cur, table, columns)
        cur.execute("select %s::regclass::oid", [table])
        table_id = cur.fetchone()[0]
        rows, errors = [], []
        bucket, prefix = _split(match["uri"])
        for key in self._keys(bucket, prefix):
            uri = f"s3://{bucket}/{key}"
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            for line_number, raw, values, reason in _records(body, keys, types):
                if reason is None:
                    rows.append(values)
                else:
                    errors.append((table_id, uri, line_number, raw, reason))
        self._log_errors(errors)
        if len(errors) > max_errors:
            raise LoadError(
                f"Load into table '{table.rsplit('.', 1)[-1]}' failed. Check 'stl_load_errors' system table "
                f"for details. ({len(errors)} rejected, MAXERROR {max_errors})"
            )
        if rows:
            placeholders = ", ".join(["%s"] * len(columns))
            psycopg2.extras.execute_batch(
                cur,
                f"insert into {table} ({', '.join(columns)}) values ({placeholders})",
                rows,
                page_size=500,
            )
        return len(rows)

    def _mapping(self, json_format: str, columns: list[str]) -> list[str | None]:
        """The JSON key each column is read from."""
        if json_format.lower() == "auto ignorecase":
            return [None] * len(columns)  # matched per object, case-insensitively
        bucket, key = _split(json_format)
        paths = json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())["jsonpaths"]
        if len(paths) != len(columns):
            raise LoadError(f"the JSONPaths file has {len(paths)} paths for {len(columns)} columns")
        return [_JSONPATH.match(path)["key"] for path in paths]

    @staticmethod
    def _column_types(cur: Any, table: str, columns: list[str]) -> list[tuple[str, str, int | None]]:
        schema_name, name = table.split(".")
        cur.execute(
            "select column_name, data_type, character_maximum_length from information_schema.columns "
            "where table_schema = %s and table_name = %s",
            [schema_name, name],
        )
        found = {row[0]: row for row in cur.fetchall()}
        return [found[column] for column in columns]

    def _keys(self, bucket: str, prefix: str) -> list[str]:
        keys = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        if not keys:
            raise LoadError(f"The specified S3 prefix '{prefix}' does not exist")
        return sorted(keys)

    def _log_errors(self, errors: list[tuple[int, str, int, str, str]]) -> None:
        if not errors:
            return
        with self._pg(autocommit=True) as con, con.cursor() as cur:
            psycopg2.extras.execute_batch(
                cur,
                "insert into public.stl_load_errors "
                "(tbl, starttime, filename, line_number, raw_line, err_code, err_reason) "
                "values (%s, localtimestamp, %s, %s, %s, 1216, %s)",
                [
                    (tbl, uri[:256], line, _periods(raw)[:1024], reason[:100])
                    for tbl, uri, line, raw, reason in errors
                ],
            )


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _periods(text: str) -> str:
    return "".join(char if ord(char) < 128 else "." for char in text)


_TYPES = {
    "character varying": "varchar",
    "integer": "integer",
    "bigint": "bigint",
    "double precision": "double precision",
}


def _records(body: bytes, keys: list[str | None], types: list[tuple[str, str, int | None]]):
    """``(line number, raw line, values, reason)`` for each JSON value of an object's text, ``reason`` None for
    a loaded record."""
    decoder = json.JSONDecoder()
    lines = body.split(b"\n")
    for number, raw_bytes in enumerate(lines, start=1):
        try:
            text = raw_bytes.decode("utf-8")
        except UnicodeDecodeError:
            yield (
                number,
                raw_bytes.decode("utf-8", "replace"),
                None,
                "Invalid or unsupported UTF-8 code point",
            )
            continue
        position = 0
        while True:
            while position < len(text) and text[position] in rules.BLANK_CHARACTERS:
                position += 1
            if position >= len(text):
                break
            try:
                document, position = decoder.raw_decode(text, position)
            except ValueError:
                yield number, text, None, "Invalid JSONPath format: Member is not an object."
                break
            yield (number, text, *_values(document, keys, types))


def _values(
    document: object, keys: list[str | None], types: list[tuple[str, str, int | None]]
) -> tuple[tuple[object, ...] | None, str | None]:
    if not isinstance(document, dict):
        return None, "Invalid JSONPath format: Member is not an object."
    lowered = {key.lower(): value for key, value in document.items()}
    values = []
    for key, (column, data_type, length) in zip(keys, types, strict=True):
        raw = document.get(key) if key is not None else lowered.get(column)
        value, ok = rules.cast_value(schema.Column(column, _TYPES[data_type]), raw)
        if not ok:
            return None, f"Invalid value for {column} ({data_type}): {str(raw)[:40]}"
        if isinstance(value, str) and length is not None and len(value.encode()) > length:
            return None, f"String length exceeds DDL length ({column})"
        if isinstance(value, str) and "\x00" in value:
            return None, f"Invalid null byte ({column})"
        values.append(value)
    return tuple(values), None


class RecordingCursor:
    """A cursor that records each statement, then runs its PostgreSQL translation."""

    def __init__(self, connection: RecordingConnection) -> None:
        self.connection = connection
        self._cur = connection.pg.cursor()
        self.copied: int | None = None

    def execute(self, sql: str, args: Any = None, **_: Any) -> RecordingCursor:
        bound = self._cur.mogrify(sql, args).decode() if args else sql
        self.connection.shim.recorder.add(bound)
        self.copied = None
        if _COPY.match(bound):
            self.copied = self.connection.shim.copy(self._cur, bound)
            return self
        try:
            self._cur.execute(translate(bound))
        except psycopg2.Error as error:  # as redshift_connector reports a statement the server refused
            import redshift_connector

            raise redshift_connector.ProgrammingError(str(error)) from error
        return self

    def executemany(self, sql: str, rows: Any) -> RecordingCursor:
        for row in rows:
            self.execute(sql, row)
        return self

    @property
    def description(self) -> Any:
        return None if self.copied is not None else self._cur.description

    @property
    def rowcount(self) -> int:
        return self.copied if self.copied is not None else self._cur.rowcount

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall()

    def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cur.fetchmany(size) if size else self._cur.fetchmany()

    def __iter__(self) -> Any:
        return iter(self._cur)

    def close(self) -> None:
        self._cur.close()

    def __enter__(self) -> RecordingCursor:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class RecordingConnection:
    """``redshift_connector.Connection``'s surface that the Airflow hook and dbt-redshift use."""

    def __init__(self, shim: RedshiftOnPostgres, pg: psycopg2.extensions.connection) -> None:
        self.shim = shim
        self.pg = pg

    @property
    def autocommit(self) -> bool:
        return self.pg.autocommit

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        self.pg.autocommit = value

    def cursor(self) -> RecordingCursor:
        return RecordingCursor(self)

    def commit(self) -> None:
        self.pg.commit()

    def rollback(self) -> None:
        self.pg.rollback()

    def close(self) -> None:
        self.pg.close()
