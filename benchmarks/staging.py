"""Section 2, staging throughput on one large day file: ours vs. DuckDB's bare ``read_json`` of the same file (the
floor) vs. a row-by-row INSERT loop (the naive baseline, timed on a sample), on DuckDB and on PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import DAY, Row, drop_database, profile_block, profiled, timed
from sparkify.datagen import generate
from sparkify.lake import Lake
from sparkify.settings import Settings, from_env

# 3. Staging throughput ------------------------------------------------------------------------------------------


def _big_day(root: Path, copies: int) -> tuple[Lake, Path, int]:
    """A lake whose one day is ``copies`` generated months of events at scale 1, made distinct."""
    source = generate(root / "source", scale=10, seed=5, days=30)
    lines = []
    for copy in range(copies):
        for path in sorted((source.root / "log_data").rglob("*.json")):
            for line in path.read_text().splitlines():
                event = json.loads(line)
                event["sessionId"] = event["sessionId"] + copy * 10_000_000
                lines.append(json.dumps(event))
    lake_root = root / "lake"
    path = lake_root / Lake.log_key(DAY)
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    shutil.copytree(source.root / "song_data", lake_root / "song_data")
    return Lake(str(lake_root), "aws_default"), path, len(lines)


def _duckdb_floor(path: Path, database: Path | None = None) -> float:
    """Seconds of DuckDB's bare ``read_json`` of the file into a table, in memory or in ``database``'s file."""
    import duckdb

    from sparkify.staging.duckdb import _DUCKDB_TYPES
    from sparkify.staging.schema import EVENTS

    columns = ", ".join(
        f"'{c.json_key}': '{_DUCKDB_TYPES.get(c.sql_type, c.sql_type).upper()}'" for c in EVENTS.columns
    )
    with duckdb.connect(str(database) if database else ":memory:") as con:
        return timed(
            lambda: con.execute(
                f"create table t as select * from read_json(?, columns = {{{columns}}}, format = 'newline_delimited')",
                [str(path)],
            )
        )


def _row_by_row(insert: Callable[[tuple], None], path: Path, sample: int) -> float:
    """Seconds per row of the naive loop: parse a line, INSERT it, one statement per row."""
    from sparkify.staging import rules
    from sparkify.staging.schema import EVENTS

    with path.open() as fh:
        lines = [next(fh) for _ in range(sample)]
    start = time.perf_counter()
    for line in lines:
        values, _ = rules.parse_record(EVENTS, line)
        insert(values)
    return (time.perf_counter() - start) / sample


def staging_throughput(
    settings: Settings, work: Path, copies: int, sample: int, profiles: list[str]
) -> list[Row]:

    from sparkify.staging import duckdb as duck
    from sparkify.staging import postgres
    from sparkify.staging.schema import EVENTS

    lake, path, events = _big_day(work, copies)
    megabytes = path.stat().st_size / 1e6
    floor = _duckdb_floor(path)
    file_floor = _duckdb_floor(path, work / "floor.duckdb")
    rows = [Row("Staging", f"day file: {events:,} events, {megabytes:.0f} MB", "", "")]

    def rate(seconds: float) -> str:
        return f"{megabytes / seconds:.1f} MB/s, {events / seconds:,.0f} events/s"

    rows.append(Row("Staging", "DuckDB bare read_json into memory (floor)", f"{floor:.2f} s", rate(floor)))
    rows.append(
        Row(
            "Staging",
            "DuckDB bare read_json into a DuckDB file (floor, like for like)",
            f"{file_floor:.2f} s",
            f"{rate(file_floor)}; ours writes to the warehouse's file too",
        )
    )
    with duck.connect(work / "bench.duckdb") as con:
        duck.stage_events(con, lake, DAY, "landing")  # tables created, file warm
        ours = timed(lambda: duck.stage_events(con, lake, DAY, "landing"))
        checked = timed(lambda: duck.stage_events(con, lake, DAY, "landing", fast=False))
        seconds, tree = profiled(lambda: duck.stage_events(con, lake, DAY, "landing"))
        profiles.append(profile_block("ours on DuckDB, the large day of plain records", seconds, tree))
        columns = ", ".join(c.name for c in EVENTS.columns)
        marks = ", ".join("?" for _ in EVENTS.columns)
        con.execute(f"create table naive as select {columns} from landing.staging_events limit 0")
        per_row = _row_by_row(
            lambda v: con.execute(f"insert into naive values ({marks})", list(v)), path, sample
        )
    rows.append(
        Row(
            "Staging",
            "ours on DuckDB, plain records (JSON reader, checked, typed)",
            f"{ours:.2f} s",
            f"{rate(ours)}; {floor / ours:.2f}x the floor in memory, {file_floor / ours:.2f}x like for like "
            "(target 0.8x)",
        )
    )
    rows.append(
        Row(
            "Staging",
            "ours on DuckDB, a day with any other line (checked line by line, quarantine)",
            f"{checked:.2f} s",
            f"{rate(checked)}; {floor / checked:.2f}x the floor in memory, {file_floor / checked:.2f}x like for like",
        )
    )
    rows.append(
        Row(
            "Staging",
            "row-by-row INSERT on DuckDB",
            f"{per_row * events:.0f} s (est.)",
            f"{1 / per_row:,.0f} events/s on {sample:,} rows; ours is {per_row * events / ours:.0f}x faster (target 50x)",
        )
    )
    pg_settings = from_env(
        {
            **os.environ,
            "SPARKIFY_WAREHOUSE": "postgres",
            "SPARKIFY_LAKE": lake.root,
            "SPARKIFY_PG_DATABASE": f"sparkify_bench_{os.getpid()}",
        }
    )
    try:
        postgres.ensure_database(pg_settings)
    except Exception as error:  # a benchmark without PostgreSQL still reports DuckDB
        rows.append(Row("Staging", "PostgreSQL", "not measured", f"no server: {error}"))
        return rows
    try:
        postgres.stage_events(pg_settings, lake, DAY)  # tables created
        ours_pg = timed(lambda: postgres.stage_events(pg_settings, lake, DAY))
        checked_pg = timed(lambda: postgres.stage_events(pg_settings, lake, DAY, fast=False))
        seconds, tree = profiled(lambda: postgres.stage_events(pg_settings, lake, DAY))
        profiles.append(profile_block("ours on PostgreSQL, the large day of plain records", seconds, tree))
        con = postgres.connect(pg_settings)
        try:
            with con.cursor() as cur:
                cur.execute("create table naive as select * from landing.staging_events limit 0")
                marks = ", ".join("%s" for _ in EVENTS.columns)
                per_row_pg = _row_by_row(
                    lambda v: cur.execute(f"insert into naive ({columns}) values ({marks})", list(v)),
                    path,
                    sample,
                )
            con.commit()
        finally:
            con.close()
        rows.append(
            Row(
                "Staging",
                "ours on PostgreSQL, plain records (lines copied, parsed and cast in SQL)",
                f"{ours_pg:.2f} s",
                f"{rate(ours_pg)}; {floor / ours_pg:.2f}x the DuckDB floor",
            )
        )
        rows.append(
            Row(
                "Staging",
                "ours on PostgreSQL, a day with any other line (parsed in Python, COPY, quarantine)",
                f"{checked_pg:.2f} s",
                f"{rate(checked_pg)}; {floor / checked_pg:.2f}x the DuckDB floor",
            )
        )
        rows.append(
            Row(
                "Staging",
                "row-by-row INSERT on PostgreSQL",
                f"{per_row_pg * events:.0f} s (est.)",
                f"{1 / per_row_pg:,.0f} events/s on {sample:,} rows; ours is {per_row_pg * events / ours_pg:.0f}x faster",
            )
        )
    finally:
        drop_database(pg_settings)
    return rows
