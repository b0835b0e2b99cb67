"""Section 4, the backfill of November through the scheduler at several scales: wall time, events/s, peak memory
of every Airflow process and task, time split into staging / dbt / orchestration, and a plot."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from benchmarks.common import DAY, Row, busy_seconds, days_label
from sparkify.datagen import generate
from sparkify.settings import from_env

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
        staging = busy_seconds([ti for ti in tis if ti["task_id"].startswith("stage_")])
        dbt = busy_seconds([ti for ti in tis if ti["task_id"].startswith("dbt_sparkify.")])
        other = busy_seconds([ti for ti in tis if not ti["task_id"].startswith(("stage_", "dbt_sparkify."))])
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
                f"scale {r.scale}: {days_label(r.days)}, {r.events:,} events, {r.megabytes:.0f} MB (runs {r.state})",
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
            f"the {days_label(last.days)} measured ({last.wall:.0f} s: Airflow's start, the first day with every song "
            f"file loaded), then {last.per_later_day:.1f} s a day, the rate of its later days (target 10 min); "
            "peak memory does not grow with the days (one run at a time)",
        )
    )
    return rows


PLOT = Path("docs") / "benchmark_scale.png"


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
    left.set_title(f"Backfill of {days_label(results[0].days)} through Airflow")
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
