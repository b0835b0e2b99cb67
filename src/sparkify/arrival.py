"""Waiting for the day's event log: the day's file lands in the lake some time after the day ends.

A run on the schedule starts when its day has ended (its data interval is the day) and waits for each of its days'
event logs before staging: ``LogArrivalSensor``, in reschedule mode, so no worker slot is held between checks
(every ``SPARKIFY_ARRIVAL_POKE``). Once every file is there it succeeds and staging starts; after
``SPARKIFY_ARRIVAL_TIMEOUT`` it fails once, not retried, naming each day still missing and where its file was
expected. A backfill or a manual run covers days already past: it does not wait, and a missing file fails its
day's staging at once.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSensorTimeout

from sparkify.lake import Lake
from sparkify.run_days import run_days
from sparkify.settings import Settings, spoken

TASK_ID = "wait_for_logs"
# The runs that wait for their files: the schedule's. Others are run on purpose for days already past.
WAITING_RUN_TYPES = ("scheduled",)


def waits(run_type: object) -> bool:
    return str(getattr(run_type, "value", run_type)) in WAITING_RUN_TYPES


def late_message(settings: Settings, missing: list[date]) -> str:
    lake = Lake(settings.lake)
    return "; ".join(
        f"no event log for {day:%Y-%m-%d} after {spoken(settings.arrival_timeout)} at {lake.log_where(day)}"
        for day in missing
    )


class LogArrivalSensor(BaseSensorOperator):
    """Succeeds once the event log of each of the run's days is in the lake (at once on a run that does not
    wait); fails after the settings' arrival timeout naming the days still missing."""

    def __init__(self, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(
            mode="reschedule",
            poke_interval=settings.arrival_poke.total_seconds(),
            timeout=settings.arrival_timeout.total_seconds(),
            **kwargs,
        )
        self.settings = settings
        self.missing: list[date] = []

    def poke(self, context: Any) -> bool:
        run = context["dag_run"]
        if not waits(run.run_type):
            self.log.info(
                "a %s run does not wait for its files: a missing one fails its staging", run.run_type
            )
            return True
        days = run_days(context["data_interval_start"], context["data_interval_end"])
        lake = Lake(self.settings.lake)
        self.missing = lake.missing_logs(days)
        for day in self.missing:
            self.log.info("waiting for the event log of %s at %s", day, lake.log_where(day))
        return not self.missing

    def execute(self, context: Any) -> Any:
        try:
            return super().execute(context)
        except AirflowSensorTimeout as timeout:
            raise AirflowSensorTimeout(late_message(self.settings, self.missing)) from timeout
