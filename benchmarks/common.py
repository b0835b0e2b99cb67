"""What every section shares: the day measured, a result row and the table, timing and pyinstrument profiles,
the machine's description, and docs/BENCHMARKS.md's sections, each replaced when it is measured again."""

from __future__ import annotations

import os
import platform
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sparkify.settings import Settings

DAY = date(2018, 11, 1)


@dataclass
class Row:
    section: str
    measure: str
    value: str
    note: str = ""


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def python() -> str:
    return sys.executable


def seconds(duration: str) -> float:
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
    return f"**Profile: {title}** ({seconds:.2f} s under pyinstrument)\n\n```text\n{tree}\n```"


def drop_database(settings: Settings) -> None:
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


def busy_seconds(tis: list[dict]) -> float:
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


def days_label(days: int) -> str:
    return f"{days} day" + ("s" if days != 1 else "")


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


SECTIONS = ("parse", "staging", "day", "scale", "demo", "hostile", "history", "year")


SECTION_TITLES = {
    "parse": "1. DAG parse",
    "staging": "2. Staging throughput",
    "day": "3. One day through Airflow vs. raw, by Cosmos execution mode",
    "scale": "4. The backfill at scale",
    "demo": "5. `make demo`'s backfill",
    "hostile": "6. A hostile file: one huge line",
    "history": "7. History: one day's cost as the days loaded grow",
    "year": "8. A year of history",
}


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
