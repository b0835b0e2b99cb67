"""Staging on DuckDB: each record read as text, checked and cast in SQL by the rules of ``rules``, one transaction
per load. Valid records land in the raw table; the others in ``staging_quarantine``, with the reason.

A day's log takes a fast path first: DuckDB's JSON reader with each column's type, which is right when every
line is a plain record (one JSON object per line, a value of the schema in at least one field, each number of the
JSON type its column takes). Any other line, or a line count that differs from the records read, sends the
day through the checks line by line instead, so what lands is the same either way."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb

from sparkify.lake import Lake, LocalFiles
from sparkify.staging import loads, rules, schema, screen
from sparkify.staging.result import StageResult

log = logging.getLogger(__name__)

_DUCKDB_TYPES = {"double precision": "DOUBLE"}
_BLANKS = "' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13)"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


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
    for table in schema.TABLES:
        con.execute(schema.create_table_sql(raw_schema, table))


def _cast(column: schema.Column, value: str) -> str:
    """SQL casting the field's text ``value`` to the column's type; NULL where the rules refuse it."""
    sql_type = _DUCKDB_TYPES.get(column.sql_type, column.sql_type).upper()
    if column.sql_type == "varchar":
        return value
    pattern = rules.INTEGER_PATTERN if column.sql_type in rules.RANGES else rules.NUMBER_PATTERN
    return (
        f"case when regexp_full_match({value}, {_literal(pattern)}) "
        f"then try_cast(trim({value}, {_BLANKS}) as {sql_type}) end"
    )


def _records_sql(table: schema.RawTable, records: str, blank: str) -> str:
    """Select ``(record_no, record, reason, <columns typed>)`` from ``records`` (a relation of ``record_no,
    record``): ``reason`` is NULL for a valid record, else why it is quarantined."""
    paths = ", ".join(_literal(f'$."{column.json_key}"') for column in table.columns)
    typed = ",\n".join(
        f"{_cast(column, f'v[{i}]')} as {column.name}" for i, column in enumerate(table.columns, start=1)
    )
    errors = ", ".join(
        f"case when v[{i}] is not null and {column.name} is null then "
        f"{_literal(column.json_key + ': cannot cast ' + chr(39))} || v[{i}] || "
        f"{_literal(chr(39) + ' to ' + column.sql_type)} end"
        for i, column in enumerate(table.columns, start=1)
        if column.sql_type != "varchar"
    )
    names = ", ".join(column.name for column in table.columns)
    return f"""
        with checked as (
            select record_no, record,
                case
                    when json_valid(record) then
                        case when starts_with(ltrim(record, {_BLANKS}), '{{') then null
                        else {_literal(rules.NOT_OBJECT)} end
                    when trim(record, {_BLANKS}) = '' then {_literal(blank)}
                    else {_literal(rules.NOT_JSON)}
                end as problem
            from {records}
        ),
        extracted as (
            select record_no, record, problem,
                case when problem is null then json_extract_string(record, [{paths}]) end as v
            from checked
        ),
        typed as (
            select record_no, record, problem, v,
            {typed}
            from extracted
        )
        select record_no, record,
            coalesce(
                problem,
                case when len(list_filter(v, x -> x is not null)) = 0 then {_literal(rules.NO_FIELD)} end,
                nullif(concat_ws('; ', {errors}), '')
            ) as reason,
            {names}
        from typed
    """


def _plain_records(
    con: duckdb.DuckDBPyConnection, table: schema.RawTable, path: Path, lines: int | None
) -> str | None:
    """Read the file (of ``lines`` lines, ``rules.line_count``) with DuckDB's JSON reader into the temp table
    ``plain_records`` (typed columns, in line order). ``None`` when every line is a plain record, else why the
    fast path cannot be taken."""
    if lines is None:
        return "empty file or byte-order mark"
    columns = ", ".join(
        f"{_literal(c.json_key)}: {_literal('VARCHAR' if c.sql_type == 'varchar' else 'JSON')}"
        for c in table.columns
    )
    typed, plain = [], []
    for column in table.columns:
        field = f'"{column.json_key}"'
        if column.sql_type == "varchar":
            typed.append(f"{field} as {column.name}")
            continue
        sql_type = _DUCKDB_TYPES.get(column.sql_type, column.sql_type).upper()
        json_types = (
            "('BIGINT', 'UBIGINT')" if column.sql_type in rules.RANGES else "('BIGINT', 'UBIGINT', 'DOUBLE')"
        )
        typed.append(f"try_cast({field} as {sql_type}) as {column.name}")
        plain.append(
            f"({field} is null or "
            f"(json_type({field}) in {json_types} and isfinite(try_cast({field} as {sql_type}))))"
        )
    some_value = " or ".join(f'"{c.json_key}" is not null' for c in table.columns)
    try:
        con.execute(
            "create or replace temp table plain_records as "
            f"select {', '.join(typed)}, ({' and '.join(plain)}) and ({some_value}) as plain "
            f"from read_json({_literal(str(path))}, columns = {{{columns}}}, format = 'newline_delimited')"
        )
    except duckdb.Error as error:
        return str(error).splitlines()[0]
    records, plain_count = con.execute(
        "select count(*), count(*) filter (where plain) from plain_records"
    ).fetchone()
    if records != lines:
        return f"{records} records read from {lines} lines"
    if plain_count != records:
        return f"{records - plain_count} records need a check"
    return None


def _first_bad(
    con: duckdb.DuckDBPyConnection, source: str | None, staged: str = "staged_records"
) -> list[rules.Bad]:
    rows = con.execute(
        f"select record_no, record, reason from {staged} where reason is not null "
        f"order by record_no limit {rules.FIRST_BAD_SHOWN}"
    ).fetchall()
    if source is None:  # song files: the record is the file
        return [rules.Bad(name, None, text, reason) for name, text, reason in rows]
    return [rules.Bad(source, line, text, reason) for line, text, reason in rows]


def stage_events(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    day: date,
    raw_schema: str,
    key: str | None = None,
    allowance: rules.Allowance | None = None,
    fast: bool = True,
) -> StageResult:
    """Replace the day's rows of ``staging_events`` (and its quarantine) with the day's log file, atomically
    (``fast``: try DuckDB's JSON reader first, see the module's doc)."""
    with lake.log_file(day, key) as (source, path), screen.log_file(source, path) as screened:
        return _stage_events(con, day, raw_schema, source, screened, allowance or rules.Allowance(), fast)


def _stage_events(
    con: duckdb.DuckDBPyConnection,
    day: date,
    raw_schema: str,
    source: str,
    screened: screen.Screened,
    allowance: rules.Allowance,
    fast: bool,
) -> StageResult:
    ensure_tables(con, raw_schema)
    path = screened.path
    target = f"{raw_schema}.{schema.EVENTS.name}"
    quarantine = f"{raw_schema}.{schema.QUARANTINE.name}"
    # Lines split from the file's text keep their numbers, blank ones included; a final newline ends the last
    # line rather than starting an empty one.
    lines = f"""(
        select unnest(lines) as record, generate_subscripts(lines, 1) as record_no
        from (
            select string_split(regexp_replace(content, '\\n$', ''), chr(10)) as lines
            from read_text({_literal(str(path))}) where content <> ''
        )
    )"""
    # The fast path's records, shaped as the checks' staged_records (the rowid of a table filled outside a
    # transaction counts its rows in insertion order, which is line order).
    plain = "(select rowid + 1 as record_no, null as record, null as reason, * exclude (plain) from plain_records)"
    try:
        if screened.refused:
            why = f"{len(screened.refused)} lines refused by the screen"
        else:
            why = _plain_records(con, schema.EVENTS, path, screened.lines) if fast else "the fast path is off"
        if why is None:
            staged = plain
            log.info("%s: every line is a plain record, read by DuckDB's JSON reader", source)
        else:
            staged = "staged_records"
            log.info("%s: checking line by line (%s)", source, why)
            con.execute(f"create or replace temp table raw_records as select record_no, record from {lines}")
            con.execute(
                "create or replace temp table staged_records as "
                + _records_sql(schema.EVENTS, "raw_records", rules.BLANK)
            )
            if screened.refused:
                con.executemany(
                    "update staged_records set record = ?, reason = ? where record_no = ?",
                    [[bad.raw_text, bad.reason, number] for number, bad in screened.refused.items()],
                )
        records, bad = con.execute(f"select count(*), count(reason) from {staged}").fetchone()
        rules.check_allowance(source, records, bad, _first_bad(con, source, staged), allowance)
        columns = ", ".join(column.name for column in schema.EVENTS.columns)
        con.execute("begin transaction")
        log.info("replacing %s of %s in one transaction", day, target)
        try:
            con.execute(f"delete from {target} where log_date = ?", [day])
            con.execute(
                f"delete from {quarantine} where source_table = ? and log_date = ?", [schema.EVENTS.name, day]
            )
            con.execute(
                f"insert into {target} select {columns}, ? as log_date, ? as source_file, "
                "record_no as source_line, current_timestamp as loaded_at "
                # No ORDER BY: staged is in line order already, and DuckDB keeps the insertion order of a scan
                # (sorting a large day cost ~40 % of this insert).
                f"from {staged} where reason is null",
                [day, source],
            )
            con.execute(
                f"insert into {quarantine} select ?, ?, ?, record_no, left(record, {rules.RAW_TEXT_LIMIT}), "
                f"left(reason, {rules.RAW_TEXT_LIMIT}), "
                f"current_timestamp from {staged} where reason is not null order by record_no",
                [schema.EVENTS.name, day, source],
            )
            con.execute("commit")
        except duckdb.Error:
            con.execute("rollback")
            raise
    except duckdb.Error as error:
        raise RuntimeError(f"staging {source} into {target} failed: {error}") from error
    finally:
        for temp in ("plain_records", "staged_records", "raw_records"):
            con.execute(f"drop table if exists {temp}")
    rows = records - bad
    log.info("staged %s rows from %s into %s; %s of %s lines quarantined", rows, source, target, bad, records)
    return StageResult(table=target, rows=rows, files=1, source=source, records=records, quarantined=bad)


def stage_songs(
    con: duckdb.DuckDBPyConnection, lake: Lake, raw_schema: str, allowance: rules.Allowance | None = None
) -> StageResult:
    """Replace ``staging_songs`` (and its quarantine) with every song file in the lake, atomically; keep them
    when the files have not changed since the last load (``loads``)."""
    ensure_tables(con, raw_schema)
    listing = lake.song_listing()
    allowance = allowance or rules.Allowance()
    current = loads.fingerprint(listing, allowance, __file__)
    target = f"{raw_schema}.{schema.SONGS.name}"
    row = con.execute(
        f"select {', '.join(c.name for c in schema.LOADS.metadata[1:])} from {raw_schema}.{schema.LOADS.name} "
        "where source_table = ?",
        [schema.SONGS.name],
    ).fetchone()
    rows_now = con.execute(f"select count(*) from {target}").fetchone()[0]
    result = loads.kept(
        loads.Load(*row) if row else None, current, rows_now, target, f"{lake.root}/song_data"
    )
    if result:
        return result
    with lake.song_files(listing) as local:
        return _stage_songs(con, lake, raw_schema, local, allowance, current)


def _stage_songs(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    raw_schema: str,
    local: LocalFiles,
    allowance: rules.Allowance,
    fingerprint: str,
) -> StageResult:
    files = local.files
    target = f"{raw_schema}.{schema.SONGS.name}"
    quarantine = f"{raw_schema}.{schema.QUARANTINE.name}"
    source = f"{lake.root}/song_data"
    refused, readable = [], []
    for file in files:
        if why := screen.song_file(lake.uri(file.relative_to(local.root).as_posix()), file):
            refused.append(why)
        else:
            readable.append(file)
    listing = "[" + ", ".join(_literal(str(file)) for file in readable) + "]"
    # A song file is one record, named by its address in the lake.
    documents = (
        f"""(
        select {_literal(lake.root.rstrip("/"))} || substr(filename, {len(str(local.root)) + 1}) as record_no,
            content as record
        from read_text({listing})
    )"""
        if readable
        else "(select null::varchar as record_no, null::varchar as record where false)"
    )
    try:
        con.execute(f"create or replace temp table raw_records as select record_no, record from {documents}")
        con.execute(
            "create or replace temp table staged_records as "
            + _records_sql(schema.SONGS, "raw_records", rules.EMPTY)
        )
        if refused:
            con.executemany(
                "insert into staged_records (record_no, record, reason) values (?, ?, ?)",
                [[bad.source_file, bad.raw_text, bad.reason] for bad in refused],
            )
        records, bad = con.execute("select count(*), count(reason) from staged_records").fetchone()
        rules.check_allowance(source, records, bad, _first_bad(con, None), allowance, unit="song files")
        columns = ", ".join(column.name for column in schema.SONGS.columns)
        con.execute("begin transaction")
        try:
            con.execute(f"delete from {target}")
            con.execute(f"delete from {quarantine} where source_table = ?", [schema.SONGS.name])
            con.execute(
                f"insert into {target} select {columns}, record_no as source_file, current_timestamp as loaded_at "
                "from staged_records where reason is null order by record_no"
            )
            con.execute(
                f"insert into {quarantine} select ?, null, record_no, null, left(record, {rules.RAW_TEXT_LIMIT}), "
                f"left(reason, {rules.RAW_TEXT_LIMIT}), current_timestamp from staged_records "
                "where reason is not null order by record_no",
                [schema.SONGS.name],
            )
            con.execute(
                f"delete from {raw_schema}.{schema.LOADS.name} where source_table = ?", [schema.SONGS.name]
            )
            con.execute(
                f"insert into {raw_schema}.{schema.LOADS.name} values (?, ?, ?, ?, ?, current_timestamp)",
                [schema.SONGS.name, fingerprint, records, records - bad, bad],
            )
            con.execute("commit")
        except duckdb.Error:
            con.execute("rollback")
            raise
    except duckdb.Error as error:
        raise RuntimeError(f"staging song files under {source} into {target} failed: {error}") from error
    finally:
        con.execute("drop table if exists staged_records")
        con.execute("drop table if exists raw_records")
    rows = records - bad
    log.info("staged %s rows from %s song files into %s; %s files quarantined", rows, len(files), target, bad)
    return StageResult(
        table=target, rows=rows, files=len(files), source=source, records=records, quarantined=bad
    )
