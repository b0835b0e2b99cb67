"""Staging on PostgreSQL: each record parsed and cast in Python by the rules of ``rules``, the typed rows bulk-loaded
with COPY FROM STDIN (no row-by-row INSERT), one transaction per load. Valid records land in the raw table; the
others in ``staging_quarantine``, with the reason.
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
from sparkify.staging import loads, rules, schema
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


def ensure_tables(cur: psycopg2.extensions.cursor, raw_schema: str) -> None:
    cur.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(raw_schema)))
    for table in schema.TABLES:
        cur.execute(schema.create_table_sql(raw_schema, table))


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
    source: str, path: Path
) -> tuple[list[tuple[int, tuple[object, ...]]], list[rules.Bad], int]:
    """The file's valid lines (number, values), its bad lines, and how many lines it has."""
    good, bad, number = [], [], 0
    try:
        with path.open(encoding="utf-8", newline="\n") as fh:
            for number, line in enumerate(fh, start=1):
                text = line.removesuffix("\n")
                values, reason = _check(schema.EVENTS, text, rules.BLANK)
                if reason is None:
                    good.append((number, values))
                else:
                    bad.append(rules.Bad(source, number, rules.clip(text), reason))
    except UnicodeDecodeError as error:
        raise RuntimeError(f"{source}: not UTF-8 text after line {number}: {error}") from error
    return good, bad, number


def _song_records(
    lake: Lake, local: LocalFiles
) -> tuple[list[tuple[str, tuple[object, ...]]], list[rules.Bad]]:
    good, bad = [], []
    for path in local.files:
        uri = lake.uri(path.relative_to(local.root).as_posix())
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise RuntimeError(f"{uri}: not UTF-8 text: {error}") from error
        values, reason = _check(schema.SONGS, text, rules.EMPTY)
        if reason is None:
            good.append((uri, values))
        else:
            bad.append(rules.Bad(uri, None, rules.clip(text), reason))
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


def stage_events(settings: Settings, lake: Lake, day: date, key: str | None = None) -> StageResult:
    """Replace the day's rows of ``staging_events`` (and its quarantine) with the day's log file, atomically."""
    with lake.log_file(day, key) as (source, path):
        good, bad, records = _log_records(source, path)
    rules.check_ratio(source, records, len(bad), bad, settings.max_bad_ratio)
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
    current = loads.fingerprint(listing, settings.max_bad_ratio, __file__)
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
    rules.check_ratio(source, files, len(bad), bad, settings.max_bad_ratio, unit="song files")
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
