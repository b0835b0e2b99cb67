"""Patches: the LocalExecutor with dbt warmed up in the scheduler before it forks its workers, and a scheduler
that marks a finished backfill complete within seconds.

Every task process is forked from one of the executor's workers, which are forked from the scheduler. A dbt
task forked from a process that has already run dbt once skips importing dbt, registering the adapter and
compiling the project's macros, and each task finds its DAG file's imports loaded (what that buys:
docs/performance.md). Configured as ``AIRFLOW__CORE__EXECUTOR=sparkify.tuning.executor.WarmLocalExecutor``;
with the tuning off (``sparkify.tuning.active``) it is the stock LocalExecutor.
"""

from __future__ import annotations

from typing import Any

from airflow.executors.local_executor import LocalExecutor

from sparkify.settings import settings
from sparkify.tuning.warm import warm

# How often the scheduler looks for backfills whose runs have all finished (Airflow: every 30 s, hard-coded).
BACKFILL_CHECK_SECONDS = 2.0


def check_backfills_often() -> None:
    """`make backfill` stops Airflow once the scheduler has marked its backfill complete
    (``AirflowApi.wait_backfill_completed``): every 30 s, the command waited 15 s on average after its last run.
    The check is one query for the backfills not yet complete. The executor starts before the scheduler sets its
    timers, in the same process: the timer is shortened there."""
    from airflow.utils.event_scheduler import EventScheduler

    stock = EventScheduler.call_regular_interval
    if getattr(stock, "sparkify_patched", False):
        return

    def call_regular_interval(self: Any, delay: float, action: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(action, "__name__", "") == "_mark_backfills_complete":
            delay = min(delay, BACKFILL_CHECK_SECONDS)
        return stock(self, delay, action, *args, **kwargs)

    call_regular_interval.sparkify_patched = True  # type: ignore[attr-defined]
    EventScheduler.call_regular_interval = call_regular_interval  # type: ignore[method-assign]


class WarmLocalExecutor(LocalExecutor):
    """``LocalExecutor`` whose task processes inherit a warm dbt and their DAG file's imports, in a scheduler
    that marks finished backfills complete within seconds."""

    def start(self) -> None:
        if warm(settings()):
            check_backfills_often()
        super().start()
