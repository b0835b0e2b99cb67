"""Staging on DuckDB: the native JSON reader with explicit column types, one transaction per load."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb

from sparkify.lake import Lake, LocalFiles
from sparkify.staging import schema
from sparkify.staging.result import StageResult

log = logging.getLogger(__name__)

_DUCKDB_TYPES = {"double precision": "DOUBLE"}


def _columns_arg(table: schema.RawTable) -> str:
    """The ``columns={...}`` struct literal that pins every JSON field's type."""
    pairs = ", ".join(
        f"'{column.json_key}': '{_DUCKDB_TYPES.get(column.sql_type, column.sql_type).upper()}'"
        for column in table.columns
    )
    return "{" + pairs + "}"


@contextmanager
def connect(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        yield con
    finally:
        con.close()


def ensure_tables(con: duckdb.DuckDBPyConnection, raw_schema: str) -> None:
    con.execute(f"create schema if not exists {raw_schema}")
    for table in (schema.EVENTS, schema.SONGS):
        con.execute(schema.create_table_sql(raw_schema, table))


def _source_select(table: schema.RawTable) -> str:
    return ", ".join(
        column.name if column.name == column.json_key else f'"{column.json_key}" as {column.name}'
        for column in table.columns
    )


def stage_events(
    con: duckdb.DuckDBPyConnection, lake: Lake, day: date, raw_schema: str, key: str | None = None
) -> StageResult:
    """Replace the day's rows of ``staging_events`` with the day's log file, atomically."""
    with lake.log_file(day, key) as (source, path):
        return _stage_events(con, day, raw_schema, source, path)


def _stage_events(
    con: duckdb.DuckDBPyConnection, day: date, raw_schema: str, source: str, path: Path
) -> StageResult:
    ensure_tables(con, raw_schema)
    target = f"{raw_schema}.{schema.EVENTS.name}"
    con.execute("begin transaction")
    try:
        con.execute(f"delete from {target} where log_date = ?", [day])
        con.execute(
            f"""
            insert into {target}
            select {_source_select(schema.EVENTS)},
                ? as log_date,
                ? as source_file,
                row_number() over () as source_line,
                current_timestamp as loaded_at
            from read_json(?, columns = {_columns_arg(schema.EVENTS)}, format = 'newline_delimited')
            """,
            [day, source, str(path)],
        )
        rows = con.execute(f"select count(*) from {target} where log_date = ?", [day]).fetchone()[0]
        con.execute("commit")
    except duckdb.Error as error:
        con.execute("rollback")
        raise RuntimeError(f"staging {source} into {target} failed: {error}") from error
    log.info("staged %s rows from %s into %s", rows, source, target)
    return StageResult(table=target, rows=rows, files=1, source=source)


def stage_songs(con: duckdb.DuckDBPyConnection, lake: Lake, raw_schema: str) -> StageResult:
    """Replace ``staging_songs`` with every song file in the lake, atomically."""
    with lake.song_files() as local:
        return _stage_songs(con, lake, raw_schema, local)


def _stage_songs(
    con: duckdb.DuckDBPyConnection, lake: Lake, raw_schema: str, local: LocalFiles
) -> StageResult:
    files = local.files
    ensure_tables(con, raw_schema)
    target = f"{raw_schema}.{schema.SONGS.name}"
    con.execute("begin transaction")
    try:
        con.execute(f"delete from {target}")
        con.execute(
            f"""
            insert into {target}
            select {_source_select(schema.SONGS)},
                ? || substr(filename, ?) as source_file,
                current_timestamp as loaded_at
            from read_json(?, columns = {_columns_arg(schema.SONGS)}, format = 'auto', filename = true)
            """,
            [lake.root.rstrip("/"), len(str(local.root)) + 1, [str(file) for file in files]],
        )
        rows = con.execute(f"select count(*) from {target}").fetchone()[0]
        con.execute("commit")
    except duckdb.Error as error:
        con.execute("rollback")
        raise RuntimeError(
            f"staging song files under {lake.root}/song_data into {target} failed: {error}"
        ) from error
    log.info("staged %s rows from %s song files into %s", rows, len(files), target)
    return StageResult(table=target, rows=rows, files=len(files), source=f"{lake.root}/song_data")
