"""The "year" section of ``make bench``: a generated year at scale 1 (2018-11-01 .. 2019-10-31), backfilled on
DuckDB in one session four ways, each on a new warehouse:

- the raw floor: the song files and every day staged, then one ``dbt build``, in one process, no Airflow;
- one run for the year (``make backfill DAYS_PER_RUN=all``): one data interval, staged by
  ``SPARKIFY_MAX_STAGING_TASKS`` task instances, one dbt build;
- 30-day runs (``DAYS_PER_RUN=30``): 13 runs, one after the other;
- a run per day (``DAYS_PER_RUN=1``, Airflow's own backfill): the first ``--year-per-day-days`` days measured and
  the year extrapolated from them (section 7 shows a day costs about the same on day 365).

For the one-run year the table adds where the run's time went, by kind of task (their busy time: the union of
their intervals), so what is left above the floor can be read as Airflow's own per-task cost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from benchmarks.common import busy_seconds
from sparkify.datagen import generate
from sparkify.settings import from_env

FIRST_DAY = date(2018, 11, 1)
YEAR_DAYS = 365
# The bar and the aim of the one-run year.
BAR_SECONDS = 600
AIM_RATIO = 1.5


@dataclass
class Mode:
    name: str
    runs: int
    days: int
    seconds: float
    extrapolated: bool = False

    @property
    def year_seconds(self) -> float:
        return self.seconds * YEAR_DAYS / self.days

    @property
    def days_per_minute(self) -> float:
        return self.days / self.seconds * 60


def _env(env: dict[str, str], work: Path, lake: Path, name: str) -> dict[str, str]:
    return {
        **env,
        "SPARKIFY_LAKE": str(lake),
        "SPARKIFY_WAREHOUSE": "duckdb",
        "SPARKIFY_DUCKDB_PATH": str(work / f"{name}.duckdb"),
        "SPARKIFY_DBT_DOCS_DIR": str(work / f"docs-{name}"),
        "SPARKIFY_RETRIES": "0",
    }


def raw_floor(env: dict[str, str], work: Path, lake: Path) -> Mode:
    import subprocess
    import sys

    from sparkify.dbt_run import DAG_DBT_FLAGS

    run_env = {**_env(env, work, lake, "floor"), **DAG_DBT_FLAGS}
    script = (
        "from datetime import date, timedelta; from sparkify.settings import from_env; "
        "from sparkify.warehouses import warehouse_for; from sparkify.dbt_run import run_dbt; "
        "s = from_env(); w = warehouse_for(s); w.prepare(); w.stage_songs(); "
        f"[w.stage_events(date({FIRST_DAY.year}, {FIRST_DAY.month}, {FIRST_DAY.day}) + timedelta(days=i)) "
        f"for i in range({YEAR_DAYS})]; run_dbt(s, 'build', '--target-path', {str(work / 'target-floor')!r})"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], env=run_env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode:
        raise RuntimeError(f"the raw floor failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return Mode("raw floor (one process, no Airflow)", 0, YEAR_DAYS, seconds)


def through_airflow(
    env: dict[str, str], work: Path, lake: Path, per_run: int, days: int
) -> tuple[Mode, list]:
    """``days`` days from the first, ``per_run`` days a run (1: Airflow's own backfill): the mode, and the task
    instances of its last run."""
    from sparkify.local_airflow import free_port, running

    name = f"per-run-{per_run}"
    run_env = _env(env, work, lake, name)
    settings = from_env(run_env)
    last_day = FIRST_DAY + timedelta(days=days - 1)
    with running(
        settings,
        free_port(),
        home=work / f"airflow-{name}",
        base_env=run_env,
        scheduler_after_backfill=per_run == 1,
    ) as airflow:
        started = time.monotonic()
        if per_run == 1:
            airflow.create_backfill(FIRST_DAY.isoformat(), last_day.isoformat(), 1)
            runs = airflow.wait_runs_finished(FIRST_DAY.isoformat(), last_day.isoformat(), days, timeout=7200)
        else:
            airflow.unpause()
            runs, first = [], FIRST_DAY
            while first <= last_day:
                last = min(first + timedelta(days=per_run - 1), last_day)
                airflow.create_range_run(first, last)
                runs += airflow.wait_runs_finished(first.isoformat(), first.isoformat(), 1, timeout=7200)
                first = last + timedelta(days=1)
        seconds = time.monotonic() - started
        failed = [run["dag_run_id"] for run in runs if run["state"] != "success"]
        if failed:
            raise RuntimeError(f"runs failed: {failed}")
        tis = airflow.task_instances(runs[-1]["dag_run_id"])
    label = {1: "a run per day", YEAR_DAYS: "one run for the year"}.get(per_run, f"{per_run}-day runs")
    return Mode(label, len(runs), days, seconds, extrapolated=days < YEAR_DAYS), tis


def where_it_goes(tis: list[dict]) -> list[tuple[str, int, float]]:
    """The one-run year's tasks by kind: how many, and how long at least one of them was running."""
    kinds: dict[str, list[dict]] = {}
    for ti in tis:
        task_id = ti["task_id"]
        if task_id == "dbt_sparkify.dbt_producer_watcher":
            kind = "dbt build (the producer)"
        elif task_id.startswith("dbt_sparkify."):
            kind = "dbt node tasks (sensors)"
        else:
            kind = task_id
        kinds.setdefault(kind, []).append(ti)
    return [(kind, len(group), busy_seconds(group)) for kind, group in kinds.items()]


def year(env: dict[str, str], work: Path, per_day_days: int, row: type) -> list:
    lake = generate(work / "lake", scale=1, seed=42, days=YEAR_DAYS).root
    floor = raw_floor(env, work, lake)
    one_run, tis = through_airflow(env, work, lake, YEAR_DAYS, YEAR_DAYS)
    month_runs, _ = through_airflow(env, work, lake, 30, YEAR_DAYS)
    per_day, _ = through_airflow(env, work, lake, 1, per_day_days)
    rows = []
    for mode in (floor, one_run, month_runs, per_day):
        note = f"{mode.days_per_minute:.1f} days/min"
        if mode.runs:
            note += f", {mode.runs} runs"
        if mode.extrapolated:
            note += f"; {mode.days} days measured in {mode.seconds:.0f} s, the year extrapolated"
        ratio = mode.year_seconds / floor.seconds
        rows.append(row("year", mode.name, f"{mode.year_seconds:.0f} s", f"{ratio:.1f}x the floor; {note}"))
    bar = "meets" if one_run.seconds <= BAR_SECONDS else "misses"
    aim = "meets" if one_run.seconds <= AIM_RATIO * floor.seconds else "misses"
    rows.append(
        row(
            "year",
            "one run: bar (under 10 min), aim (1.5x the floor)",
            f"{bar}, {aim}",
            f"{one_run.seconds:.0f} s against {BAR_SECONDS} s and {AIM_RATIO * floor.seconds:.0f} s",
        )
    )
    run_seconds = busy_seconds(tis)
    for kind, count, seconds in sorted(where_it_goes(tis), key=lambda item: -item[2]):
        rows.append(
            row(
                "year",
                f"one run, {kind}",
                f"{seconds:.0f} s",
                f"{count} task instance{'s' if count > 1 else ''}; {seconds / run_seconds:.0%} of the run's {run_seconds:.0f} s",
            )
        )
    started = min(datetime.fromisoformat(ti["start_date"]) for ti in tis if ti.get("start_date"))
    ended = max(datetime.fromisoformat(ti["end_date"]) for ti in tis if ti.get("end_date"))
    rows.append(
        row(
            "year",
            "one run, from its first task's start to its last's end",
            f"{(ended - started).total_seconds():.0f} s",
            f"the rest of {one_run.seconds:.0f} s: the run queued, scheduled, and seen finished",
        )
    )
    return rows
