"""Patch: the LocalExecutor with dbt warmed up in the scheduler before it forks its workers.

Every task process is forked from one of the executor's workers, which are forked from the scheduler. A dbt
task forked from a process that has already run dbt once skips importing dbt, registering the adapter and
compiling the project's macros, and each task finds its DAG file's imports loaded (what that buys:
docs/performance.md). Configured as ``AIRFLOW__CORE__EXECUTOR=sparkify.tuning.executor.WarmLocalExecutor``;
with the tuning off (``sparkify.tuning.active``) it is the stock LocalExecutor.
"""

from __future__ import annotations

from airflow.executors.local_executor import LocalExecutor

from sparkify.settings import settings
from sparkify.tuning.warm import warm


class WarmLocalExecutor(LocalExecutor):
    """``LocalExecutor`` whose task processes inherit a warm dbt and their DAG file's imports."""

    def start(self) -> None:
        warm(settings())
        super().start()
