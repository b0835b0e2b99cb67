"""The "history" section of ``make bench``: what one day costs as the days already loaded grow.

A year is generated at a fixed daily volume (scale 10). For each checkpoint N (day 1, 30, 90, 180, 365) the days
before N are staged and built at once (a full build: what N-1 daily runs leave, since the incremental marts equal a
full refresh, tests/dbt/test_incremental.py), then day N is staged and its dbt work timed as the DAG runs it
(``dbt build`` for that day). For some checkpoints the whole day also runs through Airflow, as a rerun of that day.

Each run of the section keeps its curve in docs/benchmark_history.json under a label (``--history-label``); the
plot draws every curve kept there. ``--history-home`` measures another checkout's dbt project (the code before a
change) with this checkout's staging.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from sparkify.datagen import generate
from sparkify.settings import Settings, from_env

CHECKPOINTS = (1, 30, 90, 180, 365)
THROUGH_AIRFLOW = (1, 365)
FIRST_DAY = date(2018, 11, 1)
HISTORY_SCALE = 10
TARGET_RATIO = 1.2
CURVES = Path("docs") / "benchmark_history.json"
PLOT = Path("docs") / "benchmark_history.png"


@dataclass
class Point:
    day: int
    events_loaded: int
    dbt_seconds: float
    airflow_seconds: float | None = None


_RUN_DBT = "import sys; from sparkify.dbt_run import run_dbt; from sparkify.settings import from_env; run_dbt(from_env(), *sys.argv[1:])"


def _dbt(env: dict[str, str], target: Path, *args: str, run_date: str | None = None) -> float:
    """One dbt command as the DAG runs it (unit tests excluded, in a process of its own); the time dbt reports for
    it (run_results.json's elapsed_time: the process's start left out)."""
    from sparkify.dbt_run import DAG_DBT_FLAGS

    extra = {**DAG_DBT_FLAGS, **({"SPARKIFY_RUN_DATE": run_date} if run_date else {})}
    command = [sys.executable, "-c", _RUN_DBT, *args, "--target-path", str(target)]
    done = subprocess.run(command, env={**env, **extra}, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(
            f"dbt {' '.join(args)} (run date {run_date}) failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    results = target / "run_results.json"
    elapsed = json.loads(results.read_text())["elapsed_time"] if results.exists() else 0.0
    results.unlink(missing_ok=True)
    return elapsed


def _through_airflow(settings: Settings, env: dict[str, str], work: Path, day: date) -> float:
    """The day's whole run through the scheduler (staging, dbt, summary, docs), from its start to its end."""
    from sparkify.local_airflow import free_port, running

    with running(
        settings, free_port(), home=work / f"airflow-{day}", base_env=env, scheduler_after_backfill=True
    ) as a:
        a.create_backfill(day.isoformat(), day.isoformat(), 1)
        [run] = a.wait_runs_finished(day.isoformat(), day.isoformat(), 1, timeout=1800)
    if run["state"] != "success":
        raise RuntimeError(f"the run of {day} through Airflow ended {run['state']}")
    return (
        datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])
    ).total_seconds()


def measure(work: Path, env: dict[str, str], home: Path | None, checkpoints: tuple[int, ...]) -> list[Point]:
    from sparkify.warehouses import warehouse_for

    days = max(checkpoints)
    lake = generate(work / "lake", scale=HISTORY_SCALE, seed=5, days=days)
    run_env = {
        **env,
        "SPARKIFY_LAKE": str(lake.root),
        "SPARKIFY_WAREHOUSE": "duckdb",
        "SPARKIFY_DUCKDB_PATH": str(work / "history.duckdb"),
        "SPARKIFY_DBT_DOCS_DIR": str(work / "dbt_docs"),
        "SPARKIFY_RETRIES": "0",
        **({"SPARKIFY_HOME": str(home)} if home else {}),
    }
    settings = from_env(run_env)
    warehouse = warehouse_for(settings)
    warehouse.prepare()
    warehouse.stage_songs()
    # Parsed once first: every timed build then parses partially, as the DAG's do.
    _dbt(run_env, work / "target", "parse")
    staged, points = 0, []
    for checkpoint in sorted(checkpoints):
        for offset in range(staged, checkpoint - 1):
            warehouse.stage_events(FIRST_DAY + timedelta(days=offset))
        if checkpoint > 1:
            _dbt(run_env, work / "target", "run", "--full-refresh")
        day = FIRST_DAY + timedelta(days=checkpoint - 1)
        warehouse.stage_events(day)
        staged = checkpoint
        seconds = _dbt(run_env, work / "target", "build", run_date=day.isoformat())
        with warehouse.cursor() as cur:
            cur.execute(f"select count(*) from {settings.raw_schema}.staging_events")
            loaded = cur.fetchone()[0]
        point = Point(checkpoint, loaded, seconds)
        if checkpoint in THROUGH_AIRFLOW:
            point.airflow_seconds = _through_airflow(settings, run_env, work, day)
        print(f"history: {point}", flush=True)
        points.append(point)
    return points


def keep(root: Path, label: str, commit: str, points: list[Point]) -> dict[str, dict]:
    """Store this curve under ``label`` with the others; every curve kept."""
    path = root / CURVES
    curves = json.loads(path.read_text()) if path.exists() else {}
    curves[label] = {
        "commit": commit,
        "measured": f"{datetime.now():%Y-%m-%d}",
        "scale": HISTORY_SCALE,
        "points": [asdict(point) for point in points],
    }
    path.write_text(json.dumps(curves, indent=2) + "\n")
    return curves


def plot(curves: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.2))
    for label, curve in curves.items():
        points = curve["points"]
        axis.plot(
            [p["day"] for p in points], [p["dbt_seconds"] for p in points], marker="o", label=f"{label}: dbt"
        )
        sampled = [p for p in points if p.get("airflow_seconds")]
        if sampled:
            axis.plot(
                [p["day"] for p in sampled],
                [p["airflow_seconds"] for p in sampled],
                marker="s",
                linestyle="--",
                label=f"{label}: whole run through Airflow",
            )
    axis.set_xlabel("days loaded (the run's day)")
    axis.set_ylabel("seconds")
    axis.set_title(f"One day's run against history (DuckDB, scale {HISTORY_SCALE})")
    axis.set_ylim(bottom=0)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def rows(curves: dict[str, dict], row_type: type) -> list:
    """One row per curve and checkpoint, and the day-365 / day-1 ratio against the target."""
    out = []
    for label, curve in curves.items():
        points = curve["points"]
        for point in points:
            through = (
                f"; through Airflow {point['airflow_seconds']:.1f} s" if point.get("airflow_seconds") else ""
            )
            out.append(
                row_type(
                    "History",
                    f"{label} ({curve['commit']}): day {point['day']}",
                    f"{point['dbt_seconds']:.1f} s",
                    f"dbt build of the day, {point['events_loaded']:,} events loaded{through}",
                )
            )
        first, last = points[0], points[-1]
        ratio = last["dbt_seconds"] / first["dbt_seconds"]
        verdict = "met" if ratio <= TARGET_RATIO else "missed"
        out.append(
            row_type(
                "History",
                f"{label}: day {last['day']} / day {first['day']}",
                f"{ratio:.2f}x",
                f"target {TARGET_RATIO}x: {verdict}",
            )
        )
    return out
