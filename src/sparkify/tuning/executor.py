"""Patch: the LocalExecutor with dbt warmed up in the scheduler before it forks its workers.

Every task process is forked from one of the executor's workers, which are forked from the scheduler. A dbt
task forked from a process that has already run dbt once skips importing dbt, registering the adapter and
compiling the project's macros, and each task finds its DAG file's imports loaded (what that buys:
docs/performance.md). Configured as ``AIRFLOW__CORE__EXECUTOR=sparkify.tuning.executor.WarmLocalExecutor``;
with the tuning off (``sparkify.tuning.active``) it is the stock LocalExecutor.
"""

from __future__ import annotations

import logging
import runpy
import time
from pathlib import Path

from airflow.executors.local_executor import LocalExecutor

from sparkify.settings import settings
from sparkify.tuning import warm

log = logging.getLogger(__name__)


def import_dag_modules(dags_folder: Path) -> list[str]:
    """Run each DAG file once here, so that a task process forked later finds every module its DAG file imports
    already loaded. A DAG file that fails here only logs a warning (the dag-processor reports it as usual)."""
    start = time.perf_counter()
    ran = []
    for path in sorted(dags_folder.glob("*.py")):
        try:
            runpy.run_path(str(path), run_name=f"sparkify_warm_up_{path.stem}")
        except Exception:
            log.warning(
                "DAG file %s failed in the warm-up; its tasks will import it cold", path, exc_info=True
            )
            continue
        ran.append(path.name)
    log.info(
        "DAG files run once for the task processes forked from this one in %.2f s: %s",
        time.perf_counter() - start,
        ", ".join(ran) or "none",
    )
    return ran


class WarmLocalExecutor(LocalExecutor):
    """``LocalExecutor`` whose task processes inherit a warm dbt and their DAG file's imports."""

    def start(self) -> None:
        warm(settings())
        super().start()
