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
8. A year of history at scale 1: the raw floor, one run for the year, 30-day runs and a run per day
   (benchmarks/year.py).

Where a target is missed, the sections add what the profile shows: pyinstrument call trees of the DAG import
and of staging, and where a day's run spends its time (from its task instances).

``--only`` runs some of the sections; docs/BENCHMARKS.md keeps the others as they were. The day section runs each Cosmos execution mode,
and the default one on stock Airflow and Cosmos (``--execution``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

from benchmarks import history, year
from benchmarks.common import SECTIONS, Row, table, write_report
from benchmarks.day import EXECUTIONS, one_day
from benchmarks.demo import demo_rows
from benchmarks.hostile import hostile_file
from benchmarks.parse import dag_parse
from benchmarks.scale import PLOT, ScaleResult, backfill_at_scale, plot_scale, scale_rows
from benchmarks.staging import staging_throughput
from sparkify.settings import from_env


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
    parser.add_argument(
        "--year-per-day-days", type=int, default=30, help="days measured a run per day in the year section"
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
            elif name == "year":
                rows = year.year(env, work / "year", args.year_per_day_days, Row)
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
