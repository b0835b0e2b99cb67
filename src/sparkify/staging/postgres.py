"""Staging on PostgreSQL: each record parsed and cast in Python by the rules of ``rules``, the typed rows bulk-loaded
with COPY FROM STDIN (no row-by-row INSERT), one transaction per load. Valid records land in the raw table; the
others in ``staging_quarantine``, with the reason.

A day's log takes a fast path first: its lines copied as they are into the server, parsed and cast there in SQL,
which is right when every line is a plain record (one JSON object per line, a value of the schema in at least
one field, text where the column is text, a JSON integer in range where it is an integer, a JSON number where it
is a double). Any other line sends the day through Python instead, so what lands is the same either way.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from sparkify.lake import Lake, LocalFiles
from sparkify.settings import Settings
from sparkify.staging import loads, rules, schema, screen
from sparkify.staging.result import StageResult

log = logging.getLogger(__name__)

# PostgreSQL text cannot hold NUL: a record carrying one is quarantined, not silently altered.
NUL = "contains the NUL character (\\u0000), which PostgreSQL text cannot hold"


def connect(settings: Settings) -> psycopg2.extensions.connection:
    pg = settings.postgres
    return psycopg2.connect(
        host=pg.host, port=pg.port, user=pg.user, password=pg.password, dbname=pg.database, connect_timeout=10
    )


def ensure_database(settings: Settings) -> None:
    """Create the warehouse database if the server does not have it yet.

    Its collation is C (byte order), as DuckDB and Redshift compare text, so ties broken by an id sort alike on
    every warehouse; the server's default ctype keeps lower() and upper() Unicode-aware.
    """
    pg = settings.postgres
    con = psycopg2.connect(
        host=pg.host, port=pg.port, user=pg.user, password=pg.password, dbname="postgres", connect_timeout=10
    )
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", [pg.database])
            if cur.fetchone() is None:
                cur.execute(
                    sql.SQL("create database {} template template0 encoding 'UTF8' lc_collate 'C'").format(
                        sql.Identifier(pg.database)
                    )
                )
    finally:
        con.close()


@contextmanager
def transaction(settings: Settings) -> Iterator[psycopg2.extensions.cursor]:
    con = connect(settings)
    try:
        with con, con.cursor() as cur:
            yield cur
    finally:
        con.close()


# The lookups of a day's run: its day (staging's replace, the dbt models' day) and its events on any day (the
# incremental models); without them each would read all of history.
EVENT_INDEXES = {
    "staging_events_log_date": ("log_date",),
    "staging_events_event": ("sessionid", "iteminsession"),
}


# Held by ensure_tables until its transaction ends. PostgreSQL's "if not exists" is no guard against a second
# transaction creating the same schema or table at the same moment (it fails on the catalog's unique index):
# stage_events and stage_songs do exactly that on a new database.
ENSURE_TABLES_LOCK = "sparkify.staging.ensure_tables"


def ensure_tables(cur: psycopg2.extensions.cursor, raw_schema: str) -> None:
    cur.execute("select pg_advisory_xact_lock(hashtext(%s))", (ENSURE_TABLES_LOCK,))
    cur.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(raw_schema)))
    for table in schema.TABLES:
        cur.execute(schema.create_table_sql(raw_schema, table))
    for name, columns in EVENT_INDEXES.items():
        cur.execute(
            sql.SQL("create index if not exists {} on {} ({})").format(
                sql.Identifier(name),
                sql.Identifier(raw_schema, schema.EVENTS.name),
                sql.SQL(", ").join(map(sql.Identifier, columns)),
            )
        )


def _field(value: object) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, float):
        return repr(value)
    # A NUL can only be in a quarantined record's raw text (valid records holding one are refused).
    text = str(value).replace("\x00", "\ufffd")
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy(
    cur: psycopg2.extensions.cursor, table: sql.Composable, columns: Sequence[str], rows: Iterable
) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(_field(value) for value in row) + "\n")
    buffer.seek(0)
    statement = sql.SQL("copy {} ({}) from stdin").format(
        table, sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    cur.copy_expert(statement.as_string(cur), buffer)


def _check(table: schema.RawTable, text: str, blank: str) -> tuple[tuple[object, ...] | None, str | None]:
    values, reason = rules.parse_record(table, text, blank)
    if values is not None and any(isinstance(value, str) and "\x00" in value for value in values):
        return None, NUL
    return values, reason


def _log_records(
    source: str, screened: screen.Screened
) -> tuple[list[tuple[int, tuple[object, ...]]], list[rules.Bad], int]:
    """The screened file's valid lines (number, values), its bad lines, and how many lines it has."""
    good, bad, number = [], [], 0
    with screened.path.open(encoding="utf-8", newline="\n") as fh:
        for number, line in enumerate(fh, start=1):
            if number in screened.refused:
                bad.append(screened.refused[number])
                continue
            text = line.removesuffix("\n")
            values, reason = _check(schema.EVENTS, text, rules.BLANK)
            if reason is None:
                good.append((number, values))
            else:
                bad.append(rules.Bad(source, number, rules.clip(text), rules.clip(reason)))
    return good, bad, number


def _song_records(
    lake: Lake, local: LocalFiles
) -> tuple[list[tuple[str, tuple[object, ...]]], list[rules.Bad]]:
    good, bad = [], []
    for path in local.files:
        uri = lake.uri(path.relative_to(local.root).as_posix())
        if refused := screen.song_file(uri, path):
            bad.append(refused)
            continue
        text = path.read_text(encoding="utf-8")
        values, reason = _check(schema.SONGS, text, rules.EMPTY)
        if reason is None:
            good.append((uri, values))
        else:
            bad.append(rules.Bad(uri, None, rules.clip(text), rules.clip(reason)))
    return good, bad


def _replace(
    settings: Settings,
    table: schema.RawTable,
    rows: Iterable[tuple[object, ...]],
    bad: Iterable[tuple[object, ...]],
    replaced: sql.Composable,
    quarantine_replaced: sql.Composable,
    source: str,
    load: tuple[object, ...] | None = None,
) -> None:
    """In one transaction: delete the ``replaced`` rows and their quarantine, copy in the new rows and bad records
    (and record the ``load`` in ``staging_loads``)."""
    target = sql.Identifier(settings.raw_schema, table.name)
    quarantine = sql.Identifier(settings.raw_schema, schema.QUARANTINE.name)
    try:
        with transaction(settings) as cur:
            log.info("replacing rows of %s.%s in one transaction", settings.raw_schema, table.name)
            ensure_tables(cur, settings.raw_schema)
            cur.execute(sql.SQL("delete from {} where {}").format(target, replaced))
            cur.execute(
                sql.SQL("delete from {} where source_table = {} and {}").format(
                    quarantine, sql.Literal(table.name), quarantine_replaced
                )
            )
            _copy(cur, target, [column.name for column in table.all_columns], rows)
            _copy(cur, quarantine, [column.name for column in schema.QUARANTINE.all_columns], bad)
            if load:
                loads_table = sql.Identifier(settings.raw_schema, schema.LOADS.name)
                cur.execute(sql.SQL("delete from {} where source_table = %s").format(loads_table), [load[0]])
                cur.execute(
                    sql.SQL("insert into {} values (%s, %s, %s, %s, %s, %s)").format(loads_table), load
                )
    except psycopg2.Error as error:
        raise RuntimeError(
            f"staging {source} into {settings.raw_schema}.{table.name} failed: {error}"
        ) from error


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")


class _NotPlainError(Exception):
    """A line of the day is not a plain record: the fast path's transaction is rolled back."""


def _plain_sql(table: schema.RawTable) -> str:
    """Select ``(n, plain, <columns typed>)`` from the temp table ``lines (n, line)``; ``plain`` is true when the
    line is a plain record, whose typed values are then exactly those ``rules.parse_record`` gives. Each line is
    parsed once, into one ``json`` value per field (``json`` keeps a number's text as written)."""
    fields = ", ".join(f'"{column.json_key}" json' for column in table.columns)
    checks, typed, kinds = [], [], []
    for column in table.columns:
        field = f'r."{column.json_key}"'
        kind = f"coalesce(json_typeof({field}), 'null')"
        kinds.append(kind)
        text = f"({field} #>> '{{}}')"
        if column.sql_type == "varchar":
            checks.append(f"{kind} in ('string', 'null')")
            typed.append(f"{text} as {column.name}")
            continue
        # A number's text cast by the column type's own input: a fraction, an exponent or a value out of range
        # for an integer column, or a double out of range, fails the statement (and the day is checked line by
        # line). A JSON integer -0 is 0.0 in a double column, as Python's float(0).
        checks.append(f"{kind} in ('number', 'null')")
        value = f"nullif({text}, '-0')" if column.sql_type not in rules.RANGES else text
        typed.append(
            f"case when {kind} = 'number' then coalesce({value}, '0')::{column.sql_type} end as {column.name}"
        )
    some_value = ", ".join(f"nullif({kind}, 'null')" for kind in kinds)
    checks.append(f"num_nonnulls({some_value}) > 0")
    return (
        f"select n, coalesce({' and '.join(f'({check})' for check in checks)}, false) as plain, "
        f"{', '.join(typed)} from lines cross join lateral json_to_record(line::json) as r({fields})"
    )


def _stage_plain_events(
    settings: Settings, day: date, source: str, path: Path, lines: int | None
) -> StageResult | None:
    """The day staged by the fast path (see the module's doc), or ``None``, changing nothing, when a line is
    not a plain record (``lines``: the file's, ``rules.line_count``)."""
    if lines is None:
        log.info("%s: checking line by line (empty file or byte-order mark)", source)
        return None
    target = sql.Identifier(settings.raw_schema, schema.EVENTS.name)
    quarantine = sql.Identifier(settings.raw_schema, schema.QUARANTINE.name)
    columns = [column.name for column in schema.EVENTS.columns]
    try:
        with transaction(settings) as cur:
            ensure_tables(cur, settings.raw_schema)
            cur.execute(
                "create temp table lines (n bigint generated always as identity, line text) on commit drop"
            )
            with path.open("rb") as fh:
                # CSV with a delimiter and a quote that JSON text never holds: each line arrives as it is.
                cur.copy_expert(
                    "copy lines (line) from stdin with (format csv, delimiter e'\\x01', quote e'\\x02')", fh
                )
            cur.execute(f"create temp table plain on commit drop as {_plain_sql(schema.EVENTS)}")
            cur.execute("select count(*), count(*) filter (where not plain) from plain")
            records, not_plain = cur.fetchone()
            if records != lines:
                raise _NotPlainError(f"{records} records read from {lines} lines")
            if not_plain:
                raise _NotPlainError(f"{not_plain} records need a check")
            log.info("%s: every line is a plain record, parsed and cast by PostgreSQL", source)
            log.info("replacing rows of %s.%s in one transaction", settings.raw_schema, schema.EVENTS.name)
            cur.execute(sql.SQL("delete from {} where log_date = %s").format(target), [day])
            cur.execute(
                sql.SQL("delete from {} where source_table = %s and log_date = %s").format(quarantine),
                [schema.EVENTS.name, day],
            )
            cur.execute(
                sql.SQL(
                    "insert into {} ({}, log_date, source_file, source_line, loaded_at) "
                    "select {}, %s, %s, n, %s from plain"
                ).format(
                    target,
                    sql.SQL(", ").join(map(sql.Identifier, columns)),
                    sql.SQL(", ").join(map(sql.Identifier, columns)),
                ),
                [day, source, _now()],
            )
    except (_NotPlainError, psycopg2.DataError) as why:
        log.info("%s: checking line by line (%s)", source, str(why).splitlines()[0])
        return None
    table = f"{settings.raw_schema}.{schema.EVENTS.name}"
    log.info("staged %s rows from %s into %s; 0 of %s lines quarantined", records, source, table, records)
    return StageResult(table, records, 1, source, records=records, quarantined=0)


def stage_events(
    settings: Settings, lake: Lake, day: date, key: str | None = None, fast: bool = True
) -> StageResult:
    """Replace the day's rows of ``staging_events`` (and its quarantine) with the day's log file, atomically
    (``fast``: try the plain-record path first, see the module's doc)."""
    with lake.log_file(day, key) as (source, path), screen.log_file(source, path) as screened:
        if screened.refused:
            log.info(
                "%s: checking line by line (%s lines refused by the screen)", source, len(screened.refused)
            )
        elif fast and (result := _stage_plain_events(settings, day, source, path, screened.lines)):
            return result
        elif not fast:
            log.info("%s: checking line by line (the fast path is off)", source)
        good, bad, records = _log_records(source, screened)
    rules.check_allowance(source, records, len(bad), bad, settings.allowance)
    now = _now()
    day_literal = sql.Literal(day.isoformat())
    _replace(
        settings,
        schema.EVENTS,
        ((*values, day, source, number, now) for number, values in good),
        ((schema.EVENTS.name, day, b.source_file, b.line, b.raw_text, b.reason, now) for b in bad),
        replaced=sql.SQL("log_date = {}::date").format(day_literal),
        quarantine_replaced=sql.SQL("log_date = {}::date").format(day_literal),
        source=source,
    )
    target = f"{settings.raw_schema}.{schema.EVENTS.name}"
    log.info(
        "staged %s rows from %s into %s; %s of %s lines quarantined",
        len(good),
        source,
        target,
        len(bad),
        records,
    )
    return StageResult(target, len(good), 1, source, records=records, quarantined=len(bad))


def stage_songs(settings: Settings, lake: Lake) -> StageResult:
    """Replace ``staging_songs`` (and its quarantine) with every song file in the lake, atomically; keep them
    when the files have not changed since the last load (``loads``)."""
    source = f"{lake.root}/song_data"
    target = f"{settings.raw_schema}.{schema.SONGS.name}"
    listing = lake.song_listing()
    current = loads.fingerprint(listing, settings.allowance, __file__)
    with transaction(settings) as cur:
        ensure_tables(cur, settings.raw_schema)
        columns = [column.name for column in schema.LOADS.metadata[1:]]
        cur.execute(
            sql.SQL("select {} from {} where source_table = %s").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.Identifier(settings.raw_schema, schema.LOADS.name),
            ),
            [schema.SONGS.name],
        )
        row = cur.fetchone()
        cur.execute(
            sql.SQL("select count(*) from {}").format(sql.Identifier(settings.raw_schema, schema.SONGS.name))
        )
        rows_now = cur.fetchone()[0]
    result = loads.kept(loads.Load(*row) if row else None, current, rows_now, target, source)
    if result:
        return result
    with lake.song_files(listing) as local:
        good, bad = _song_records(lake, local)
        files = len(local.files)
    rules.check_allowance(source, files, len(bad), bad, settings.allowance, unit="song files")
    now = _now()
    _replace(
        settings,
        schema.SONGS,
        ((*values, uri, now) for uri, values in good),
        ((schema.SONGS.name, None, b.source_file, None, b.raw_text, b.reason, now) for b in bad),
        replaced=sql.SQL("true"),
        quarantine_replaced=sql.SQL("true"),
        source=source,
        load=(schema.SONGS.name, current, files, len(good), len(bad), now),
    )
    log.info(
        "staged %s rows from %s song files into %s; %s files quarantined", len(good), files, target, len(bad)
    )
    return StageResult(target, len(good), files, source, records=files, quarantined=len(bad))
