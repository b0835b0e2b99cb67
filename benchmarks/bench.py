"""Benchmarks: ``python -m benchmarks.bench`` (``make bench``) prints a table and writes it to docs/BENCHMARKS.md.

Measured side by side in one run, so ratios hold on a shared machine:

1. DAG parse: the median of N fresh-process imports of the DAG file, and the parse time Airflow's DagBag reports
   (``airflow dags report``, the code path of the dag-processor).
2. One day through Airflow (a real scheduler run of ``sparkify_daily``) vs. the same work done raw: staging and
   one ``dbt build`` in one process.
3. Staging throughput on one large day file: ours vs. DuckDB's bare ``read_json`` of the same file (the floor) vs.
   a row-by-row INSERT loop (the naive baseline, timed on a sample), on DuckDB and on PostgreSQL.
4. The backfill of November (``--days``) through the scheduler at scale 1, 10 and 100 (``--scales``): wall time,
   events/s, peak memory of every Airflow process and task, time split into staging / dbt / orchestration, and
   a plot (docs/benchmark_scale.png).
5. ``make demo``'s backfill, November at scale 1, measured whole.
6. A hostile day file: one line of ``--hostile-gib`` GiB among a day's events, staged on DuckDB and PostgreSQL in
   a fresh process each; its peak RSS against the same day without that line.
7. History: one day's dbt work on day 1, 30, 90, 180 and 365 of a generated year at scale 10, and the whole run
   through Airflow on some of them (benchmarks/history.py); a plot of every curve kept (docs/benchmark_history.png).

Where a target is missed, the sections add what the profile shows: pyinstrument call trees of the DAG import
and of staging, and where a day's run spends its time (from its task instances).

``--only`` runs some of the sections; docs/BENCHMARKS.md keeps the others as they were. The day section runs each Cosmos execution mode,
and the default one on stock Airflow and Cosmos (``--execution``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from benchmarks import history
from sparkify.datagen import generate
from sparkify.lake import Lake
from sparkify.settings import Settings, from_env
from sparkify.warehouses import warehouse_for

DAY = date(2018, 11, 1)


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


# Profiles (pyinstrument) -----------------------------------------------------------------------------------------


def profile_tree(session: object, min_share: float = 0.04, max_lines: int = 28) -> str:
    """A pyinstrument session as a short call tree: the frames that took at least ``min_share`` of the time; a
    chain of frames that each hand on nearly all their time to one callee is one line, ``first > last``."""
    from pyinstrument import processors

    frame = session.root_frame()  # type: ignore[attr-defined]
    for process in (
        processors.remove_importlib,
        processors.remove_tracebackhide,
        processors.aggregate_repeated_calls,
        processors.merge_consecutive_self_time,
        processors.remove_unnecessary_self_time_nodes,
    ):
        frame = process(frame, options={})
    total = frame.time
    lines: list[str] = []

    def name(node: Any) -> str:
        # DuckDB's Python methods are pybind11 functions, named after pybind11's internals.
        return re.sub(r"^pybind11_\w+\.", "duckdb.", node.function)

    def walk(node: Any, depth: int, first: Any = None) -> None:
        if node.time < min_share * total or len(lines) >= max_lines:
            return
        big = [child for child in node.children if child.time >= min_share * total]
        if len(big) == 1 and big[0].time >= 0.9 * node.time:
            walk(big[0], depth, first or node)
            return
        chain = f"{name(first)} > {name(node)}" if first is not None else name(node)
        lines.append(f"{'  ' * depth}{node.time:6.2f} s  {chain}  {node.file_path_short}:{node.line_no}")
        for child in sorted(big, key=lambda child: -child.time):
            walk(child, depth + 1)

    walk(frame, 0)
    return "\n".join(lines)


def profiled(action: Callable[[], object]) -> tuple[float, str]:
    """Seconds of ``action`` under pyinstrument (sampling every millisecond), and its call tree."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001)
    start = time.perf_counter()
    profiler.start()
    try:
        action()
    finally:
        profiler.stop()
    return time.perf_counter() - start, profile_tree(profiler.last_session)


def profile_block(title: str, seconds: float, tree: str) -> str:
    return f"**Profile: {title}** ({seconds:.2f} s under pyinstrument)\n\n```\n{tree}\n```"


# 1. DAG parse ---------------------------------------------------------------------------------------------------

_IMPORT_SDK = """
import time
start = time.perf_counter()
import airflow.sdk
print(time.perf_counter() - start)
"""

_PROFILE_DAG = """
import runpy, sys, time
from pyinstrument import Profiler
profiler = Profiler(interval=0.001)
start = time.perf_counter()
profiler.start()
runpy.run_path(sys.argv[1])
profiler.stop()
print(time.perf_counter() - start)
profiler.last_session.save(sys.argv[2])
"""

_IMPORT_DAG = """
import importlib.util, sys, time
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("sparkify_daily", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(time.perf_counter() - start)
"""


def dag_parse(settings: Settings, runs: int, env: dict[str, str], profiles: list[str]) -> list[Row]:
    from pyinstrument.session import Session

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
    with tempfile.TemporaryDirectory() as scratch:
        saved = Path(scratch) / "import.pyisession"
        out = subprocess.run(
            [_python(), "-c", _PROFILE_DAG, str(dag_file), str(saved)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        seconds = float(out.stdout.strip().splitlines()[-1])
        profiles.append(
            profile_block(
                "a fresh-process import of the DAG file", seconds, profile_tree(Session.load(saved))
            )
        )
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


def _duckdb_floor(path: Path, database: Path | None = None) -> float:
    """Seconds of DuckDB's bare ``read_json`` of the file into a table, in memory or in ``database``'s file."""
    import duckdb

    from sparkify.staging.duckdb import _DUCKDB_TYPES
    from sparkify.staging.schema import EVENTS

    columns = ", ".join(
        f"'{c.json_key}': '{_DUCKDB_TYPES.get(c.sql_type, c.sql_type).upper()}'" for c in EVENTS.columns
    )
    with duckdb.connect(str(database) if database else ":memory:") as con:
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
        ours = _timed(lambda: duck.stage_events(con, lake, DAY, "landing"))
        checked = _timed(lambda: duck.stage_events(con, lake, DAY, "landing", fast=False))
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
        ours_pg = _timed(lambda: postgres.stage_events(pg_settings, lake, DAY))
        checked_pg = _timed(lambda: postgres.stage_events(pg_settings, lake, DAY, fast=False))
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
        _drop_database(pg_settings)
    return rows


# Staging a day in a fresh process: prints the records, the quarantined ones, and the process's peak RSS (its
# VmHWM: ru_maxrss would carry over the forking parent's peak, which exec does not reset).
_STAGE_AND_MEASURE = """
import re
from datetime import date
from pathlib import Path
from sparkify.warehouses import warehouse_for
from sparkify.settings import from_env
result = warehouse_for(from_env()).stage_events(date.fromisoformat({day!r}))
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024
print(result["records"], result["quarantined"], peak)
"""
# What the hostile line may add to staging's peak memory: the screen holds at most one record's limit of it.
HOSTILE_RSS_TARGET = 64 * 2**20


def _write_hostile_day(source: Path, target: Path, size: int) -> None:
    """``source``'s lines with one line of ``size`` bytes (a JSON object with one long string) after the first."""
    lines = source.read_bytes().splitlines(keepends=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as fh:
        fh.write(lines[0])
        head, tail = b'{"artist": "', b'"}\n'
        fh.write(head)
        block, left = b"x" * 2**20, size - len(head) - len(tail)
        while left > 0:
            fh.write(block[: min(left, len(block))])
            left -= len(block)
        fh.write(tail)
        fh.writelines(lines[1:])


def hostile_file(work: Path, gib: float) -> list[Row]:
    """Peak RSS of staging a day holding one huge line, on each warehouse, against the same day without it."""
    source = generate(work / "source", scale=10, seed=5, days=1)
    day_file = source.root / Lake.log_key(DAY)
    clean = work / "clean"
    shutil.copytree(source.root, clean)
    hostile = work / "hostile"
    shutil.copytree(source.root, hostile)
    size = int(gib * 2**30)
    _write_hostile_day(day_file, hostile / Lake.log_key(DAY), size)
    rows = [
        Row(
            "Hostile",
            f"day file: {day_file.stat().st_size / 1e6:.1f} MB of events and one line of {size:,} bytes",
            "",
            "",
        )
    ]
    database = f"sparkify_bench_hostile_{os.getpid()}"
    for warehouse in ("duckdb", "postgres"):
        peaks = {}
        for name, lake in (("without", clean), ("with", hostile)):
            env = {
                **os.environ,
                "SPARKIFY_WAREHOUSE": warehouse,
                "SPARKIFY_LAKE": str(lake),
                "SPARKIFY_DUCKDB_PATH": str(work / f"{name}.duckdb"),
                "SPARKIFY_PG_DATABASE": database,
                "SPARKIFY_MAX_BAD_RATIO": "1",
            }
            try:
                warehouse_for(from_env(env)).prepare()
            except Exception as error:
                rows.append(Row("Hostile", warehouse, "not measured", f"not ready: {error}"))
                break
            started = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", _STAGE_AND_MEASURE.format(day=DAY.isoformat())],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            records, quarantined, peak = (int(value) for value in out[-3:])
            peaks[name] = (peak, records, quarantined, time.perf_counter() - started)
        if len(peaks) < 2:
            continue
        added = peaks["with"][0] - peaks["without"][0]
        rows.append(
            Row(
                "Hostile",
                f"{warehouse}: peak RSS staging the day with the line (without it)",
                f"{peaks['with'][0] / 2**20:.0f} MiB ({peaks['without'][0] / 2**20:.0f} MiB)",
                f"+{added / 2**20:.0f} MiB for the {size / 2**30:.1f} GiB line (target < "
                f"{HOSTILE_RSS_TARGET / 2**20:.0f} MiB: {'met' if added < HOSTILE_RSS_TARGET else 'MISSED'}); "
                f"{peaks['with'][2]} of {peaks['with'][1]:,} lines quarantined; {peaks['with'][3]:.1f} s "
                f"({peaks['without'][3]:.1f} s without)",
            )
        )
    with contextlib.suppress(Exception):  # no PostgreSQL server: no database was made
        _drop_database(from_env({**os.environ, "SPARKIFY_PG_DATABASE": database}))
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


TASK_KINDS = (
    ("staging", lambda task_id: task_id.startswith("stage_")),
    ("dbt build", lambda task_id: task_id.endswith("dbt_producer_watcher")),
    ("dbt node tasks", lambda task_id: task_id.startswith("dbt_sparkify.")),
    ("summary", lambda task_id: task_id == "summary"),
    ("docs", lambda task_id: task_id == "docs"),
)


def run_profile(run: dict, tis: list[dict], label: str) -> str:
    """Where a run's time went, from its task instances: per kind of task, how many, the sum of their
    durations (process time, overlapping ones each counted) and how long at least one of them ran; what is left
    of the run's span when no task ran is the scheduler's and the executor's (queueing, process starts)."""
    kinds: dict[str, list[dict]] = {name: [] for name, _ in TASK_KINDS} | {"other": []}
    for ti in tis:
        kind = next((name for name, matches in TASK_KINDS if matches(ti["task_id"])), "other")
        kinds[kind].append(ti)
    span = (
        datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])
    ).total_seconds()
    lines = [
        f"**Profile: where the run's time goes, {label}** (task instances of the run; span {span:.1f} s)",
        "",
        "| tasks | count | sum of durations | at least one running |",
        "| --- | --- | --- | --- |",
    ]
    for name, group in kinds.items():
        if group:
            total = sum(ti.get("duration") or 0.0 for ti in group)
            lines.append(f"| {name} | {len(group)} | {total:.1f} s | {_busy_seconds(group):.1f} s |")
    idle = span - _busy_seconds(tis)
    lines.append(f"| none running (scheduling, queueing, process starts) | | | {idle:.1f} s |")
    return "\n".join(lines)


def one_day(
    settings: Settings, work: Path, env: dict[str, str], executions: list[str], profiles: list[str]
) -> list[Row]:
    from sparkify.dbt import DAG_DBT_FLAGS, run_dbt
    from sparkify.local_airflow import free_port, running
    from sparkify.warehouses import warehouse_for

    lake = generate(work / "day-lake", scale=1, seed=42, days=1).root
    day_env = {**env, "SPARKIFY_LAKE": str(lake), "SPARKIFY_WAREHOUSE": "duckdb"}

    raw_settings = from_env({**day_env, "SPARKIFY_DUCKDB_PATH": str(work / "direct.duckdb")})

    def raw() -> None:
        warehouse_for(raw_settings).stage_songs()
        warehouse_for(raw_settings).stage_events(DAY)
        # The DAG's dbt environment: its day, and its flags (no unit tests).
        os.environ.update({**DAG_DBT_FLAGS, "SPARKIFY_RUN_DATE": DAY.isoformat()})
        try:
            run_dbt(raw_settings, "build", "--target-path", str(work / "raw-target"))
        finally:
            for key in (*DAG_DBT_FLAGS, "SPARKIFY_RUN_DATE"):
                os.environ.pop(key, None)

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
            **EXECUTIONS[execution][0],
        }
        airflow_settings = from_env(airflow_env)
        home = work / f"airflow-{execution}"
        with running(
            airflow_settings, free_port(), home=home, base_env=airflow_env, scheduler_after_backfill=True
        ) as airflow:
            start = time.perf_counter()
            airflow.create_backfill(DAY.isoformat(), DAY.isoformat(), 1)
            [run] = airflow.wait_until(
                "the day's run",
                lambda airflow=airflow: airflow.finished_runs(DAY.isoformat(), DAY.isoformat(), 1),
                timeout=1800,
                interval=0.5,
            )
            airflow_seconds = time.perf_counter() - start
            tis = airflow.task_instances(run["dag_run_id"])
            tasks = len(tis)
        profiles.append(run_profile(run, tis, EXECUTIONS[execution][1]))
        # The run alone, from its start to its end: the scheduler's start (and its dbt warm-up) left out.
        run_seconds = (
            datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])
        ).total_seconds()
        rows.append(
            Row(
                "One day",
                f"through Airflow, {EXECUTIONS[execution][1]} ({tasks} tasks, run {run['state']})",
                f"{airflow_seconds:.1f} s",
                f"{airflow_seconds / raw_seconds:.1f}x the raw run (target 1.5x); backfill created to run "
                f"finished (the run alone: {run_seconds:.1f} s, {run_seconds / raw_seconds:.1f}x)",
            )
        )
    return rows


# How the day runs through Airflow: the environment, and the label of its row.
EXECUTIONS = {
    "local": (
        {"SPARKIFY_DBT_EXECUTION": "local"},
        "Cosmos LOCAL, dbt runner in process, a dbt command per task",
    ),
    "watcher": (
        {"SPARKIFY_DBT_EXECUTION": "watcher"},
        "Cosmos WATCHER (default), one dbt build, a sensor task per node",
    ),
    # What managed Airflow runs: the stock LocalExecutor, no patch of sparkify.tuning.
    "stock": (
        {
            "SPARKIFY_DBT_EXECUTION": "watcher",
            "SPARKIFY_TUNING": "off",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        },
        "Cosmos WATCHER on stock Airflow and Cosmos (SPARKIFY_TUNING=off, the stock LocalExecutor)",
    ),
}


# 4. The backfill at scale ----------------------------------------------------------------------------------------


class TreeMemory:
    """Samples, every ``interval`` seconds in a thread, the memory of a set of process trees: the sum of RSS (what
    ``ps`` shows; pages shared after a fork are counted once per process, so an upper bound) and of PSS (shared
    pages split between their processes: what the tree really holds). Keeps the peaks."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.roots: list[int] = []
        self.peak_rss = self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(self.interval):
            rss = pss = 0
            seen: set[int] = set()
            for root in list(self.roots):
                try:
                    top = psutil.Process(root)
                    tree = [top, *top.children(recursive=True)]
                except psutil.Error:
                    continue
                for process in tree:
                    if process.pid in seen:
                        continue
                    seen.add(process.pid)
                    try:
                        info = process.memory_full_info()
                    except psutil.Error:
                        continue
                    rss += info.rss
                    pss += getattr(info, "pss", info.rss)
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)


@dataclass
class ScaleResult:
    scale: int
    days: int
    events: int
    megabytes: float
    wall: float
    staging: float
    dbt: float
    other: float
    peak_rss: int
    peak_pss: int
    state: str
    # Seconds a day once the backfill runs: from the first run's end to the last run's end, per later run.
    per_later_day: float = 0.0

    @property
    def orchestration(self) -> float:
        return max(0.0, self.wall - self.staging - self.dbt - self.other)


def _busy_seconds(tis: list[dict]) -> float:
    """How long at least one of these tasks was running: the union of their intervals (a watcher run's node
    tasks run next to its build and to each other)."""
    spans = sorted(
        (datetime.fromisoformat(ti["start_date"]), datetime.fromisoformat(ti["end_date"]))
        for ti in tis
        if ti.get("start_date") and ti.get("end_date")
    )
    busy, current = 0.0, None
    for start, end in spans:
        if current and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current:
            busy += (current[1] - current[0]).total_seconds()
        current = (start, end)
    if current:
        busy += (current[1] - current[0]).total_seconds()
    return busy


def backfill_at_scale(work: Path, env: dict[str, str], scales: list[int], days: int) -> list[ScaleResult]:
    """The backfill of ``days`` days of November through the scheduler (DuckDB, the default Cosmos mode) at each
    scale: wall time from backfill created to last run finished, the peak memory of every Airflow process and
    task, and the time split by task kind (the time tasks of each kind were running: staging, dbt, the rest;
    orchestration is what is left of the wall time)."""
    from sparkify.local_airflow import free_port, running

    first, last = DAY.isoformat(), date(2018, 11, days).isoformat()
    results = []
    for scale in scales:
        lake = generate(work / f"lake-{scale}", scale=scale, seed=42, days=days).root
        logs = sorted((lake / "log_data").rglob("*.json"))
        events = sum(sum(1 for line in path.open("rb") if line.strip()) for path in logs)
        megabytes = sum(path.stat().st_size for path in logs) / 1e6
        airflow_env = {
            **env,
            "SPARKIFY_LAKE": str(lake),
            "SPARKIFY_WAREHOUSE": "duckdb",
            "SPARKIFY_DUCKDB_PATH": str(work / f"scale_{scale}.duckdb"),
            "SPARKIFY_DBT_DOCS_DIR": str(work / f"dbt_docs_{scale}"),
            "SPARKIFY_RETRIES": "0",
        }
        settings = from_env(airflow_env)
        with (
            TreeMemory() as memory,
            running(
                settings,
                free_port(),
                home=work / f"airflow-{scale}",
                base_env=airflow_env,
                scheduler_after_backfill=True,
            ) as airflow,
        ):
            memory.roots = [process.pid for process in airflow.processes.values()]
            start = time.perf_counter()
            airflow.create_backfill(first, last, 1)
            runs = airflow.wait_until(
                f"the backfill at scale {scale}",
                lambda airflow=airflow: airflow.finished_runs(first, last, days),
                timeout=4 * 3600,
                interval=1,
                describe=lambda airflow=airflow: airflow.describe_runs(first, last),
            )
            wall = time.perf_counter() - start
            tis = [ti for run in runs for ti in airflow.task_instances(run["dag_run_id"])]
        staging = _busy_seconds([ti for ti in tis if ti["task_id"].startswith("stage_")])
        dbt = _busy_seconds([ti for ti in tis if ti["task_id"].startswith("dbt_sparkify.")])
        other = _busy_seconds([ti for ti in tis if not ti["task_id"].startswith(("stage_", "dbt_sparkify."))])
        states = sorted({run["state"] for run in runs})
        ends = sorted(datetime.fromisoformat(run["end_date"]) for run in runs)
        per_later_day = (ends[-1] - ends[0]).total_seconds() / (days - 1) if days > 1 else wall
        results.append(
            ScaleResult(
                scale,
                days,
                events,
                megabytes,
                wall,
                staging,
                dbt,
                other,
                memory.peak_rss,
                memory.peak_pss,
                "/".join(states),
                per_later_day,
            )
        )
        print(f"scale {scale}: {results[-1]}", flush=True)
    return results


def _days(days: int) -> str:
    return f"{days} day" + ("s" if days != 1 else "")


def scale_rows(results: list[ScaleResult]) -> list[Row]:
    rows = []
    base = results[0]
    for r in results:
        growth = (
            f"; x{r.wall / base.wall:.1f} the time for x{r.events / base.events:.0f} the events"
            if r is not base
            else ""
        )
        rows.append(
            Row(
                "Backfill",
                f"scale {r.scale}: {_days(r.days)}, {r.events:,} events, {r.megabytes:.0f} MB (runs {r.state})",
                f"{r.wall:.0f} s",
                f"{r.events / r.wall:,.0f} events/s; staging {r.staging:.0f} s, dbt {r.dbt:.0f} s, summary and "
                f"docs {r.other:.0f} s, orchestration {r.orchestration:.0f} s; peak RSS {r.peak_rss / 2**30:.2f} GiB "
                f"(PSS {r.peak_pss / 2**30:.2f} GiB){growth}",
            )
        )
    last = results[-1]
    if last.days >= 30:
        rows.append(
            Row(
                "Backfill",
                f"November (30 days) at scale {last.scale}, end to end",
                f"{last.wall / 60:.1f} min",
                f"measured (the row above): {last.per_later_day:.1f} s a day after the first (target 10 min); peak "
                f"RSS {last.peak_rss / 2**30:.2f} GiB (target 2 GiB)",
            )
        )
        return rows
    projected = last.wall + last.per_later_day * (30 - last.days)
    rows.append(
        Row(
            "Backfill",
            f"November (30 days) at scale {last.scale}, projected",
            f"{projected / 60:.1f} min",
            f"the {_days(last.days)} measured ({last.wall:.0f} s: Airflow's start, the first day with every song "
            f"file loaded), then {last.per_later_day:.1f} s a day, the rate of its later days (target 10 min); "
            "peak memory does not grow with the days (one run at a time)",
        )
    )
    return rows


def demo_rows(result: ScaleResult) -> list[Row]:
    """The backfill `make demo` runs (November at scale 1), measured whole rather than projected."""
    return [
        Row(
            "Demo",
            f"{_days(result.days)} at scale {result.scale} through the scheduler (runs {result.state})",
            f"{result.wall / 60:.1f} min",
            f"{result.wall:.0f} s from the backfill created to its last run finished, {result.wall / result.days:.1f} s "
            f"a day (target 5 min); peak RSS {result.peak_rss / 2**30:.2f} GiB",
        )
    ]


def plot_scale(results: list[ScaleResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"scale {r.scale}\n{r.events:,} events" for r in results]
    parts = [
        ("staging", [r.staging for r in results]),
        ("dbt", [r.dbt for r in results]),
        ("summary + docs", [r.other for r in results]),
        ("orchestration", [r.orchestration for r in results]),
    ]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    bottom = [0.0] * len(results)
    for name, values in parts:
        left.bar(labels, values, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    left.set_ylabel("wall time (s)")
    left.set_title(f"Backfill of {_days(results[0].days)} through Airflow")
    left.legend()
    right.plot(labels, [r.peak_rss / 2**30 for r in results], marker="o", label="peak RSS (sum)")
    right.plot(labels, [r.peak_pss / 2**30 for r in results], marker="o", label="peak PSS (sum)")
    right.axhline(2, color="grey", linestyle="--", label="target 2 GiB")
    right.set_ylabel("GiB, every Airflow process and task")
    right.set_title("Peak memory of the process tree")
    right.set_ylim(bottom=0)
    right.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


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


SECTIONS = ("parse", "staging", "day", "scale", "demo", "hostile", "history")
SECTION_TITLES = {
    "parse": "1. DAG parse",
    "staging": "2. Staging throughput",
    "day": "3. One day through Airflow vs. raw, by Cosmos execution mode",
    "scale": "4. The backfill at scale",
    "demo": "5. `make demo`'s backfill",
    "hostile": "6. A hostile file: one huge line",
    "history": "7. History: one day's cost as the days loaded grow",
}
PLOT = Path("docs") / "benchmark_scale.png"


def write_report(out: Path, tables: dict[str, str]) -> None:
    """Replace the sections measured now in ``out``, keep the others as they were (each says when it ran)."""
    text = out.read_text() if out.exists() else ""
    blocks = {
        name: match.group(1)
        for name in SECTIONS
        if (match := re.search(rf"<!-- {name} -->\n(.*?)<!-- /{name} -->\n", text, re.DOTALL))
    }
    stamp = f"`make bench`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, on {machine()}."
    for name, table_text in tables.items():
        blocks[name] = f"## {SECTION_TITLES[name]}\n\n{stamp}\n\n{table_text}\n\n"
    notes = ""
    if (marker := "<!-- notes -->\n") in text:
        notes = text[text.index(marker) :]
    body = "".join(
        f"<!-- {name} -->\n{blocks[name]}<!-- /{name} -->\n" for name in SECTIONS if name in blocks
    )
    out.write_text(f"# Benchmarks\n\n`make bench` (`python -m benchmarks.bench --help`).\n\n{body}\n{notes}")


def _commit(checkout: Path) -> str:
    """The short commit of a checkout, with ``+changes`` when its files differ from it."""
    git = ["git", "-C", str(checkout)]
    commit = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    )
    return (commit or "unknown") + ("+changes" if dirty.stdout.strip() else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__)
    parser.add_argument("--parse-runs", type=int, default=10)
    parser.add_argument("--copies", type=int, default=4, help="generated months (scale 10) in the large day")
    parser.add_argument("--sample", type=int, default=5000, help="rows timed for the row-by-row baseline")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="sections to run (default: all)")
    parser.add_argument(
        "--execution", choices=tuple(EXECUTIONS), action="append", help="ways to run the day through Airflow"
    )
    parser.add_argument("--scales", default="1,10,100", help="generator scales of the backfill section")
    parser.add_argument("--days", type=int, default=30, help="days of November in the backfill section")
    parser.add_argument("--hostile-gib", type=float, default=1.0, help="size of the hostile line, in GiB")
    parser.add_argument("--out", type=Path, help="markdown file to update (default: docs/BENCHMARKS.md)")
    parser.add_argument(
        "--history-checkpoints",
        default=",".join(map(str, history.CHECKPOINTS)),
        help="days of the history section",
    )
    parser.add_argument("--history-label", default="after", help="the name the history curve is kept under")
    parser.add_argument(
        "--history-home",
        type=Path,
        help="checkout whose dbt project the history section measures (default: this)",
    )
    args = parser.parse_args(argv)
    settings = from_env()
    env = {**os.environ, "DO_NOT_TRACK": "1", "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False"}
    sections = args.only or list(SECTIONS)
    tables: dict[str, str] = {}
    results: list[ScaleResult] = []
    out = args.out or settings.root / "docs" / "BENCHMARKS.md"
    with tempfile.TemporaryDirectory(prefix="sparkify-bench-") as tmp:
        work = Path(tmp)
        for name in sections:
            profiles: list[str] = []
            if name == "parse":
                rows = dag_parse(settings, args.parse_runs, env, profiles)
            elif name == "staging":
                rows = staging_throughput(settings, work / "staging", args.copies, args.sample, profiles)
            elif name == "hostile":
                rows = hostile_file(work / "hostile", args.hostile_gib)
            elif name == "history":
                checkpoints = tuple(int(x) for x in args.history_checkpoints.split(","))
                points = history.measure(work / "history", env, args.history_home, checkpoints)
                commit = _commit(args.history_home or settings.root)
                curves = history.keep(settings.root, args.history_label, commit, points)
                history.plot(curves, out.parent / history.PLOT.name)
                rows = history.rows(curves, Row)
            elif name == "day":
                rows = one_day(settings, work / "day", env, args.execution or list(EXECUTIONS), profiles)
            elif name == "demo":
                # The scale section's November at scale 1 is this very backfill: measured once.
                done = [r for r in results if (r.scale, r.days) == (1, 30)]
                [result] = done or backfill_at_scale(work / "demo", env, [1], 30)
                rows = demo_rows(result)
            else:
                results = backfill_at_scale(
                    work / "scale", env, [int(x) for x in args.scales.split(",")], args.days
                )
                rows = scale_rows(results)
                plot = out.parent / PLOT.name
                plot_scale(results, plot)
                print(f"plot written to {plot}")
            tables[name] = "\n\n".join([table(rows), *profiles])
            if name == "scale":
                tables[name] += f"\n\n![Backfill wall time and peak memory against scale]({PLOT.name})"
            if name == "history":
                tables[name] += f"\n\n![One day's run time against the days loaded]({history.PLOT.name})"
            print(tables[name], flush=True)
    write_report(out, tables)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
