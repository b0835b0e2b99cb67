"""Benchmarks: ``python -m sparkify.bench`` (``make bench``) prints a table and writes it to docs/BENCHMARKS.md.

Measured side by side in one run, so ratios hold on a shared machine:

1. DAG parse: the median of N fresh-process imports of the DAG file, and the parse time Airflow's DagBag reports
   (``airflow dags report``, the code path of the dag-processor).
2. One day through Airflow (a real scheduler run of ``sparkify_daily``) vs. the same work done raw: staging and
   one ``dbt build`` in one process.
3. Staging throughput on one large day file: ours vs. DuckDB's bare ``read_json`` of the same file (the floor) vs.
   a row-by-row INSERT loop (the naive baseline, timed on a sample), on DuckDB and on PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sparkify.datagen import generate
from sparkify.lake import Lake
from sparkify.settings import Settings, from_env

DAY = date(2018, 11, 1)
NOT_YET = (
    "Not measured by this script yet: the November backfill at scale 1, 10 and 100 (wall time, peak RSS, growth "
    "with scale) and a comparison of Cosmos execution modes.\n"
)


@dataclass
class Row:
    section: str
    measure: str
    value: str
    note: str = ""


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _python() -> str:
    return sys.executable


def _seconds(duration: str) -> float:
    """``H:MM:SS.ffffff`` (how Airflow prints a timedelta) in seconds."""
    hours, minutes, seconds = duration.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


# 1. DAG parse ---------------------------------------------------------------------------------------------------

_IMPORT_SDK = """
import time
start = time.perf_counter()
import airflow.sdk
print(time.perf_counter() - start)
"""

_IMPORT_DAG = """
import importlib.util, sys, time
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("sparkify_daily", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(time.perf_counter() - start)
"""


def dag_parse(settings: Settings, runs: int, env: dict[str, str]) -> list[Row]:
    dag_file = settings.root / "airflow" / "dags" / "sparkify_daily.py"

    def fresh(code: str) -> list[float]:
        times = []
        for _ in range(runs):
            out = subprocess.run(
                [_python(), "-c", code, str(dag_file)], env=env, capture_output=True, text=True, check=True
            )
            times.append(float(out.stdout.strip().splitlines()[-1]))
        return times

    floor = fresh(_IMPORT_SDK)
    times = fresh(_IMPORT_DAG)
    rows = [
        Row(
            "DAG parse",
            f"fresh-process `import airflow.sdk` alone, median of {runs}",
            f"{statistics.median(floor):.2f} s",
            "the floor of any Airflow 3 DAG file",
        ),
        Row(
            "DAG parse",
            f"fresh-process import, median of {runs}",
            f"{statistics.median(times):.2f} s",
            f"min {min(times):.2f} s, max {max(times):.2f} s; target 0.3 s",
        ),
    ]
    home = Path(tempfile.mkdtemp(prefix="bench-airflow-"))
    airflow_env = {
        **env,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dag_file.parent),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    airflow = str(Path(_python()).with_name("airflow"))
    try:
        subprocess.run([airflow, "db", "migrate"], env=airflow_env, capture_output=True, check=True)
        report = subprocess.run(
            [airflow, "dags", "report", "-o", "json"],
            env=airflow_env,
            capture_output=True,
            text=True,
            check=True,
        )
        entries = json.loads(next(line for line in report.stdout.splitlines() if line.startswith("[{")))
        duration = next(e["duration"] for e in entries if "sparkify_daily" in e["file"])
        rows.append(
            Row(
                "DAG parse",
                "DagBag parse of the file (airflow dags report)",
                f"{_seconds(str(duration)):.2f} s",
                "the dag-processor's own measure, Airflow already imported",
            )
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return rows


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


def _duckdb_floor(path: Path) -> float:
    import duckdb

    from sparkify.staging.duckdb import _DUCKDB_TYPES
    from sparkify.staging.schema import EVENTS

    columns = ", ".join(
        f"'{c.json_key}': '{_DUCKDB_TYPES.get(c.sql_type, c.sql_type).upper()}'" for c in EVENTS.columns
    )
    with duckdb.connect() as con:
        return _timed(
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


def staging_throughput(settings: Settings, work: Path, copies: int, sample: int) -> list[Row]:

    from sparkify.staging import duckdb as duck
    from sparkify.staging import postgres
    from sparkify.staging.schema import EVENTS

    lake, path, events = _big_day(work, copies)
    megabytes = path.stat().st_size / 1e6
    floor = _duckdb_floor(path)
    rows = [Row("Staging", f"day file: {events:,} events, {megabytes:.0f} MB", "", "")]

    def rate(seconds: float) -> str:
        return f"{megabytes / seconds:.1f} MB/s, {events / seconds:,.0f} events/s"

    rows.append(Row("Staging", "DuckDB bare read_json (floor)", f"{floor:.2f} s", rate(floor)))
    with duck.connect(work / "bench.duckdb") as con:
        ours = _timed(lambda: duck.stage_events(con, lake, DAY, "raw", max_bad_ratio=0.01))
        columns = ", ".join(c.name for c in EVENTS.columns)
        marks = ", ".join("?" for _ in EVENTS.columns)
        con.execute(f"create table naive as select {columns} from raw.staging_events limit 0")
        per_row = _row_by_row(
            lambda v: con.execute(f"insert into naive values ({marks})", list(v)), path, sample
        )
    rows.append(
        Row(
            "Staging",
            "ours on DuckDB (checked, typed, quarantine)",
            f"{ours:.2f} s",
            f"{rate(ours)}; {floor / ours:.2f}x the floor (target 0.8x)",
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
        ours_pg = _timed(lambda: postgres.stage_events(pg_settings, lake, DAY))
        con = postgres.connect(pg_settings)
        try:
            with con.cursor() as cur:
                cur.execute("create table naive as select * from raw.staging_events limit 0")
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
                "ours on PostgreSQL (parse in Python, COPY)",
                f"{ours_pg:.2f} s",
                f"{rate(ours_pg)}; {floor / ours_pg:.2f}x the DuckDB floor",
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
        _drop_database(pg_settings)
    return rows


def _drop_database(settings: Settings) -> None:
    import psycopg2
    from psycopg2 import sql

    pg = settings.postgres
    con = psycopg2.connect(host=pg.host, port=pg.port, user=pg.user, password=pg.password, dbname="postgres")
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(pg.database))
            )
    finally:
        con.close()


# 2. One day through Airflow vs. raw -----------------------------------------------------------------------------


def one_day(settings: Settings, work: Path, env: dict[str, str], executions: list[str]) -> list[Row]:
    from sparkify import staging
    from sparkify.dbt import run_dbt
    from sparkify.local_airflow import free_port, running

    lake = generate(work / "day-lake", scale=1, seed=42, days=1).root
    day_env = {**env, "SPARKIFY_LAKE": str(lake), "SPARKIFY_WAREHOUSE": "duckdb"}

    raw_settings = from_env({**day_env, "SPARKIFY_DUCKDB_PATH": str(work / "direct.duckdb")})

    def raw() -> None:
        staging.stage_songs(raw_settings)
        staging.stage_events(raw_settings, DAY)
        os.environ["SPARKIFY_RUN_DATE"] = DAY.isoformat()
        try:
            run_dbt(raw_settings, "build", "--target-path", str(work / "raw-target"))
        finally:
            os.environ.pop("SPARKIFY_RUN_DATE", None)

    raw_seconds = _timed(raw)
    rows = [
        Row("One day", "raw: staging + one dbt build, one process", f"{raw_seconds:.1f} s", "DuckDB, scale 1")
    ]
    for execution in executions:
        airflow_env = {
            **day_env,
            "SPARKIFY_DUCKDB_PATH": str(work / f"through_airflow_{execution}.duckdb"),
            "SPARKIFY_DBT_DOCS_DIR": str(work / "dbt_docs"),
            "SPARKIFY_RETRIES": "0",
            "SPARKIFY_DBT_EXECUTION": execution,
        }
        airflow_settings = from_env(airflow_env)
        home = work / f"airflow-{execution}"
        with running(airflow_settings, free_port(), home=home, base_env=airflow_env) as airflow:
            start = time.perf_counter()
            airflow.create_backfill(DAY.isoformat(), DAY.isoformat(), 1)
            run = airflow.wait_until(
                "the day's run",
                lambda airflow=airflow: (
                    (runs := airflow.runs(DAY.isoformat(), DAY.isoformat()))
                    and runs[0]["state"] in {"success", "failed"}
                    and runs[0]
                ),
                timeout=1800,
                interval=0.5,
            )
            airflow_seconds = time.perf_counter() - start
            tasks = len(airflow.task_instances(run["dag_run_id"]))
        rows.append(
            Row(
                "One day",
                f"through Airflow, Cosmos {EXECUTION_LABELS[execution]} ({tasks} tasks, run {run['state']})",
                f"{airflow_seconds:.1f} s",
                f"{airflow_seconds / raw_seconds:.1f}x the raw run (target 1.5x); backfill created to run finished",
            )
        )
    return rows


EXECUTION_LABELS = {
    "local": "LOCAL, dbt runner in process, a dbt command per task",
    "watcher": "WATCHER, one dbt build, a deferred sensor per node",
}


# Report -----------------------------------------------------------------------------------------------------------


def machine() -> str:
    import duckdb

    versions = {}
    for package in ("apache-airflow", "astronomer-cosmos", "dbt-core", "duckdb"):
        from importlib.metadata import version

        versions[package] = version(package)
    cpus = os.cpu_count()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.node()}: {cpus} CPUs, {memory:.0f} GiB, Python {platform.python_version()}, "
        + ", ".join(f"{name} {value}" for name, value in versions.items())
        + f" (duckdb module {duckdb.__version__})"
    )


def table(rows: list[Row]) -> str:
    header = Row("section", "measure", "value", "note")
    cells = [header, *rows]
    widths = [max(len(getattr(r, f)) for r in cells) for f in ("section", "measure", "value", "note")]
    lines = []
    for i, r in enumerate(cells):
        values = (r.section, r.measure, r.value, r.note)
        lines.append("| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |")
        if i == 0:
            lines.append("| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparkify.bench", description=__doc__)
    parser.add_argument("--parse-runs", type=int, default=10)
    parser.add_argument("--copies", type=int, default=4, help="generated months (scale 10) in the large day")
    parser.add_argument("--sample", type=int, default=5000, help="rows timed for the row-by-row baseline")
    parser.add_argument("--only", choices=("parse", "staging", "day"), action="append")
    parser.add_argument(
        "--execution", choices=("local", "watcher"), action="append", help="Cosmos modes to run"
    )
    parser.add_argument("--out", type=Path, help="markdown file to write (default: docs/BENCHMARKS.md)")
    args = parser.parse_args(argv)
    settings = from_env()
    env = {**os.environ, "DO_NOT_TRACK": "1", "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False"}
    sections = args.only or ["parse", "staging", "day"]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="sparkify-bench-") as tmp:
        work = Path(tmp)
        if "parse" in sections:
            rows += dag_parse(settings, args.parse_runs, env)
            print(table(rows), flush=True)
        if "staging" in sections:
            rows += staging_throughput(settings, work / "staging", args.copies, args.sample)
            print(table(rows), flush=True)
        if "day" in sections:
            rows += one_day(settings, work / "day", env, args.execution or ["local", "watcher"])
    report = table(rows)
    print(report)
    out = args.out or settings.root / "docs" / "BENCHMARKS.md"
    out.write_text(
        f"# Benchmarks\n\n`make bench`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, on {machine()}.\n\n{report}\n\n"
        + NOT_YET
    )
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
