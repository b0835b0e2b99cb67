"""Staging on PostgreSQL: the lake's JSON streamed with COPY FROM STDIN, typed by SQL casts, one transaction per load.

Each JSON document is copied as one text field into a temporary table (bulk, no row-by-row INSERT); a single
INSERT ... SELECT then casts every field to the type the raw schema gives it, so PostgreSQL and DuckDB land the
same values.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from sparkify.lake import Lake, LocalFiles
from sparkify.settings import Settings
from sparkify.staging import schema
from sparkify.staging.result import StageResult

log = logging.getLogger(__name__)

# COPY's CSV format with separators that JSON text cannot contain unescaped: a whole document is one field.
_FIELD = "\x02"
_QUOTE = "\x01"
_COPY_LINES = (
    "copy {table} (source_file, source_line, doc) from stdin "
    "with (format csv, delimiter e'\\x02', quote e'\\x01')"
)


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


def _cast(column: schema.Column) -> sql.Composable:
    """``(document ->> 'key')::type``: the JSON field as text, cast to the column's type."""
    return sql.SQL("(parsed.document ->> {key})::{type} as {name}").format(
        key=sql.Literal(column.json_key), type=sql.SQL(column.sql_type), name=sql.Identifier(column.name)
    )


def _copy_documents(cur: psycopg2.extensions.cursor, rows: Iterable[tuple[str, int, str]]) -> None:
    cur.execute(
        "create temporary table staging_documents (source_file text, source_line integer, doc text) "
        "on commit drop"
    )
    buffer = io.StringIO()
    for source_file, line, doc in rows:
        buffer.write(f"{_QUOTE}{source_file}{_QUOTE}{_FIELD}{line}{_FIELD}{_QUOTE}{doc}{_QUOTE}\n")
    buffer.seek(0)
    cur.copy_expert(_COPY_LINES.format(table="staging_documents"), buffer)


def _log_lines(source: str, path: Path) -> Iterator[tuple[str, int, str]]:
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                yield source, number, line.rstrip("\n")


def _song_documents(lake: Lake, local: LocalFiles) -> Iterator[tuple[str, int, str]]:
    for path in local.files:
        # JSON allows a line break only between tokens, where a space means the same.
        text = path.read_text(encoding="utf-8").replace("\n", " ").replace("\r", " ").strip()
        yield lake.uri(path.relative_to(local.root).as_posix()), 1, text


def _insert_select(
    cur: psycopg2.extensions.cursor, raw_schema: str, table: schema.RawTable, extra: sql.SQL
) -> None:
    columns = [column.name for column in table.all_columns]
    cur.execute(
        sql.SQL(
            "insert into {target} ({columns}) select {casts}, {extra} from staging_documents, "
            "lateral (select doc::jsonb as document) as parsed"
        ).format(
            target=sql.Identifier(raw_schema, table.name),
            columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
            casts=sql.SQL(", ").join(_cast(column) for column in table.columns),
            extra=extra,
        )
    )


def ensure_tables(cur: psycopg2.extensions.cursor, raw_schema: str) -> None:
    cur.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(raw_schema)))
    for table in (schema.EVENTS, schema.SONGS):
        cur.execute(schema.create_table_sql(raw_schema, table))


def _replace(
    settings: Settings,
    table: schema.RawTable,
    documents: Iterable[tuple[str, int, str]],
    replaced: sql.Composable,
    metadata: sql.Composable,
    source: str,
    files: int,
) -> StageResult:
    """In one transaction: copy the documents, delete the ``replaced`` rows, insert the documents typed."""
    target = f"{settings.raw_schema}.{table.name}"
    try:
        with transaction(settings) as cur:
            ensure_tables(cur, settings.raw_schema)
            _copy_documents(cur, documents)
            cur.execute(
                sql.SQL("delete from {} where {}").format(
                    sql.Identifier(settings.raw_schema, table.name), replaced
                )
            )
            _insert_select(cur, settings.raw_schema, table, metadata)
            rows = cur.rowcount
    except psycopg2.Error as error:
        raise RuntimeError(f"staging {source} into {target} failed: {error}") from error
    log.info("staged %s rows from %s file(s) at %s into %s", rows, files, source, target)
    return StageResult(table=target, rows=rows, files=files, source=source)


def stage_events(settings: Settings, lake: Lake, day: date, key: str | None = None) -> StageResult:
    """Replace the day's rows of ``staging_events`` with the day's log file, atomically."""
    day_literal = sql.Literal(day.isoformat())
    with lake.log_file(day, key) as (source, path):
        return _replace(
            settings,
            schema.EVENTS,
            _log_lines(source, path),
            replaced=sql.SQL("log_date = {}::date").format(day_literal),
            metadata=sql.SQL(
                "{}::date, source_file, source_line, (now() at time zone 'utc')::timestamp"
            ).format(day_literal),
            source=source,
            files=1,
        )


def stage_songs(settings: Settings, lake: Lake) -> StageResult:
    """Replace ``staging_songs`` with every song file in the lake, atomically."""
    with lake.song_files() as local:
        return _replace(
            settings,
            schema.SONGS,
            _song_documents(lake, local),
            replaced=sql.SQL("true"),
            metadata=sql.SQL("source_file, (now() at time zone 'utc')::timestamp"),
            source=f"{lake.root}/song_data",
            files=len(local.files),
        )
