"""The benchmark script's own machinery (its measurements are never asserted on: they vary by machine)."""

from __future__ import annotations

import subprocess
import sys
import time

from sparkify.bench import Row, TreeMemory, table, write_report


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
    from sparkify.bench import _busy_seconds

    def ti(start: int, end: int) -> dict:
        return {"start_date": f"2018-11-01T00:00:{start:02d}Z", "end_date": f"2018-11-01T00:00:{end:02d}Z"}

    # A build from 0 to 10 with node tasks inside and after it, then a gap, then one more task.
    tasks = [ti(0, 10), ti(2, 3), ti(9, 12), ti(11, 13), ti(20, 25), {"start_date": None, "end_date": None}]
    assert _busy_seconds(tasks) == 13 + 5
    assert _busy_seconds([]) == 0
