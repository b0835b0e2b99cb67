"""Section 1, DAG parse: the median of N fresh-process imports of the DAG file, and the parse time Airflow's DagBag
reports (``airflow dags report``, the code path of the dag-processor); the import's profile when it is slow."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from benchmarks.common import Row, profile_block, profile_tree, python
from sparkify.settings import Settings

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
                [python(), "-c", code, str(dag_file)], env=env, capture_output=True, text=True, check=True
            )
            times.append(float(out.stdout.strip().splitlines()[-1]))
        return times

    floor = fresh(_IMPORT_SDK)
    times = fresh(_IMPORT_DAG)
    with tempfile.TemporaryDirectory() as scratch:
        saved = Path(scratch) / "import.pyisession"
        out = subprocess.run(
            [python(), "-c", _PROFILE_DAG, str(dag_file), str(saved)],
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
    airflow = str(Path(python()).with_name("airflow"))
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
                f"{seconds(str(duration)):.2f} s",
                "the dag-processor's own measure, Airflow already imported",
            )
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return rows
