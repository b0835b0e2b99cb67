"""The benchmark script's own machinery (its measurements are never asserted on: they vary by machine)."""

from __future__ import annotations

import subprocess
import sys
import time

from benchmarks.common import Row, busy_seconds, profiled, table, write_report
from benchmarks.day import run_profile
from benchmarks.scale import ScaleResult, TreeMemory, scale_rows


def test_a_section_run_alone_replaces_only_itself(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    write_report(
        out,
        {"parse": table([Row("DAG parse", "import", "1.00 s")]), "day": table([Row("One day", "a", "9 s")])},
    )
    out.write_text(out.read_text() + "<!-- notes -->\n## What the numbers say\n\nhand-written analysis\n")

    write_report(out, {"day": table([Row("One day", "b", "7 s")])})

    text = out.read_text()
    assert "| import" in text and "1.00 s" in text
    assert "7 s" in text and "9 s" not in text
    assert text.index("## 1. DAG parse") < text.index("## 3. One day") < text.index("hand-written analysis")
    assert text.count("<!-- notes -->") == 1


def test_tree_memory_sees_a_child_of_a_child():
    code = (
        "import subprocess, sys; subprocess.run([sys.executable, '-c', "
        "'import time; block = bytearray(300 * 2**20); time.sleep(3)'])"
    )
    parent = subprocess.Popen([sys.executable, "-c", code])
    with TreeMemory(interval=0.1) as memory:
        memory.roots = [parent.pid]
        parent.wait(timeout=60)
        time.sleep(0.2)
    assert memory.peak_rss >= 300 * 2**20
    assert 300 * 2**20 <= memory.peak_pss <= memory.peak_rss


def test_busy_time_counts_overlapping_tasks_once():

    def ti(start: int, end: int) -> dict:
        return {"start_date": f"2018-11-01T00:00:{start:02d}Z", "end_date": f"2018-11-01T00:00:{end:02d}Z"}

    # A build from 0 to 10 with node tasks inside and after it, then a gap, then one more task.
    tasks = [ti(0, 10), ti(2, 3), ti(9, 12), ti(11, 13), ti(20, 25), {"start_date": None, "end_date": None}]
    assert busy_seconds(tasks) == 13 + 5
    assert busy_seconds([]) == 0


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _heavy() -> None:
    _spin(0.6)


def _light() -> None:
    _spin(0.2)


def _both() -> None:
    _heavy()
    _light()


def test_a_profile_names_where_the_time_went_heaviest_first():
    seconds, tree = profiled(_both)
    lines = tree.splitlines()
    heavy = next(line for line in lines if " _heavy " in line)
    light = next(line for line in lines if " _light " in line)
    assert lines.index(heavy) < lines.index(light)
    assert float(heavy.split()[0]) > 2 * float(light.split()[0])
    assert "tests/test_bench.py" in heavy
    assert seconds >= 0.8


def test_a_run_profile_splits_its_span_by_kind_of_task():
    def ti(task_id: str, start: float, end: float) -> dict:
        stamp = lambda s: f"2018-11-01T00:00:{s:06.3f}+00:00"  # noqa: E731
        return {
            "task_id": task_id,
            "start_date": stamp(start),
            "end_date": stamp(end),
            "duration": end - start,
        }

    tis = [
        ti("stage_events", 0, 1),
        ti("dbt_sparkify.dbt_producer_watcher", 2, 6),
        ti("dbt_sparkify.dim_users.run", 3, 4),
        ti("dbt_sparkify.dim_users.test", 5, 7),
        ti("summary", 8, 9),
    ]
    text = run_profile({"start_date": tis[0]["start_date"], "end_date": tis[-1]["end_date"]}, tis, "test")
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert rows["dbt node tasks"] == "| dbt node tasks | 2 | 3.0 s | 3.0 s |"
    assert rows["dbt build"] == "| dbt build | 1 | 4.0 s | 4.0 s |"
    # Busy 1 + (2..7) + 1 = 7 s of a 9 s span: 2 s with no task running.
    assert rows["none running (scheduling, queueing, process starts)"].endswith("| 2.0 s |")


def test_november_is_projected_from_the_later_days_or_reported_as_measured():
    def result(days: int, wall: float, per_later_day: float) -> ScaleResult:
        return ScaleResult(100, days, 1000, 1.0, wall, 1.0, 1.0, 1.0, 2**30, 2**29, "success", per_later_day)

    projected = scale_rows([result(3, 60.0, 12.0)])[-1]
    assert projected.measure == "November (30 days) at scale 100, projected"
    assert projected.value == f"{(60 + 27 * 12) / 60:.1f} min"
    measured = scale_rows([result(30, 480.0, 15.0)])[-1]
    assert measured.measure == "November (30 days) at scale 100, end to end"
    assert measured.value == "8.0 min" and "15.0 s a day after the first" in measured.note
