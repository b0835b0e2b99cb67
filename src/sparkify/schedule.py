"""The daily schedule: a run per day, started once the day has ended, named by its day.

Airflow's cron schedule with data intervals: the run for a day starts at the next midnight UTC, its data interval
is the day and its logical date (``ds``) the day's start, as in Airflow's own backfill. Airflow 3 names every run
by when it may start, which for a day is the next one; a scheduled or backfill run is named by its day instead
(``scheduled__2018-11-02T00:00:00+00:00`` covers 2018-11-02), as the audit table, the dbt results and the alerts
show it. Registered by the project's plugin, so the scheduler can read it back.
"""

from __future__ import annotations

from typing import Any

from airflow.timetables.interval import CronDataIntervalTimetable
from airflow.utils.types import DagRunType

# The runs named by their day: one per day. A manual run keeps Airflow's name, unique per trigger.
NAMED_BY_DAY = (DagRunType.SCHEDULED, DagRunType.BACKFILL_JOB)


class EachDayOnceEnded(CronDataIntervalTimetable):
    """``0 0 * * *`` in UTC, a data interval per day, each run named by its day."""

    def __init__(self) -> None:
        super().__init__("0 0 * * *", timezone="UTC")

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> EachDayOnceEnded:
        return cls()

    def generate_run_id(
        self, *, run_type: DagRunType, run_after: Any, data_interval: Any, **extra: Any
    ) -> str:
        if data_interval is not None and run_type in NAMED_BY_DAY:
            return run_type.generate_run_id(suffix=data_interval.start.isoformat())
        return super().generate_run_id(
            run_type=run_type, run_after=run_after, data_interval=data_interval, **extra
        )
