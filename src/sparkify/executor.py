"""The LocalExecutor with dbt warmed up in the scheduler before it forks its workers.

Every task process is forked from one of the executor's workers, which are forked from the scheduler. A dbt
task started cold imports dbt, registers the adapter and compiles the project's macros (about 1.5 s for one
model here); forked from a process that has already run dbt once, the same task takes about 0.8 s. A day's run
has ~28 dbt tasks. Configured as ``AIRFLOW__CORE__EXECUTOR=sparkify.executor.WarmLocalExecutor``.
"""

from __future__ import annotations

from airflow.executors.local_executor import LocalExecutor

from sparkify.dbt import warm_up
from sparkify.settings import settings


class WarmLocalExecutor(LocalExecutor):
    """``LocalExecutor`` whose task processes inherit a warm dbt."""

    def start(self) -> None:
        warm_up(settings())
        super().start()
