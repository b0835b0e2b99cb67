"""Section 6, a hostile day file: one line of ``--hostile-gib`` GiB among a day's events, staged on DuckDB and
PostgreSQL in a fresh process each; its peak RSS against the same day without that line."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import DAY, Row, drop_database
from sparkify.datagen import generate
from sparkify.lake import Lake
from sparkify.settings import from_env
from sparkify.warehouses import warehouse_for

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
        drop_database(from_env({**os.environ, "SPARKIFY_PG_DATABASE": database}))
    return rows
