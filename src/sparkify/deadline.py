"""The deadline of a day's scheduled run: ``SPARKIFY_DEADLINE`` after its day ended, through Airflow's Deadline
Alerts.

``ScheduledDayEnd`` is a deadline reference (registered by the project's plugin, so the scheduler can read it
back): the end of a scheduled run's data interval, and none for a backfill or a manual run, which are run on
purpose for days already past and have no deadline. Airflow records the deadline when it creates the run, drops it
when the run succeeds in time, and otherwise, once it has passed, runs ``on_deadline_missed`` once, in the
executor (a ``SyncCallback``: no triggerer needed). The alert goes out as failure alerts do (``alerts.send``): the
``SPARKIFY_ALERT`` line, and e-mail through ``SPARKIFY_ALERT_CONN_ID``. It names the run's days, the deadline and
what the run is waiting for: a day's file still missing from the lake, or the run itself.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from airflow.sdk import BaseDeadlineReference, DeadlineAlert, SyncCallback

from sparkify.arrival import waits
from sparkify.settings import Settings


class ScheduledDayEnd(BaseDeadlineReference):
    """When a scheduled run's day ended (its data interval's end); no deadline for other runs."""

    required_kwargs = frozenset({"dag_id", "run_id"})

    def _evaluate_with(self, *, session: Any, dag_id: str, run_id: str, **kwargs: Any) -> datetime | None:
        from airflow.models import DagRun
        from sqlalchemy import select

        row = session.execute(
            select(DagRun.run_type, DagRun.data_interval_end).where(
                DagRun.dag_id == dag_id, DagRun.run_id == run_id
            )
        ).one_or_none()
        if row is None or not waits(row[0]):
            return None
        return row[1]


def deadline_alert(settings: Settings) -> DeadlineAlert:
    return DeadlineAlert(
        reference=ScheduledDayEnd(),
        interval=settings.deadline,
        callback=SyncCallback(on_deadline_missed),
        name="day_late",
    )


def deadline_of(settings: Settings, interval_end: datetime) -> datetime:
    """When a scheduled run whose day ended at ``interval_end`` is late."""
    return interval_end + settings.deadline


def on_deadline_missed(context: dict[str, Any]) -> None:
    """The deadline's callback: one alert naming the run's days, the deadline and what the run waits for."""
    from sparkify.alerts import send
    from sparkify.settings import settings

    run, deadline = context["dag_run"], context["deadline"]
    days = run_days_of(run)
    alert = {
        "kind": "deadline",
        "dag_id": run["dag_id"],
        "run_id": run["dag_run_id"],
        "days": [day.isoformat() for day in days],
        "deadline": as_datetime(deadline["deadline_time"]).isoformat(),
        "run_state": run["state"],
        "waiting_for": waiting_for(settings(), days, run["state"]),
    }
    send(
        alert,
        context,
        f"[sparkify] {alert['dag_id']}: {', '.join(alert['days'])} late, not done by {alert['deadline']}",
    )


def as_datetime(value: datetime | str) -> datetime:
    """The deadline as the callback gets it: a datetime in the LocalExecutor, its ISO text through Celery."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def run_days_of(run: dict[str, Any]) -> list[date]:
    from sparkify.run_days import run_days

    return run_days(
        datetime.fromisoformat(run["data_interval_start"]), datetime.fromisoformat(run["data_interval_end"])
    )


def waiting_for(settings: Settings, days: list[date], run_state: str) -> str:
    """What a late run is waiting for, for a person: the files still missing, else the run itself."""
    from sparkify.lake import Lake

    lake = Lake(settings.lake)
    try:
        missing = lake.missing_logs(days)
    except Exception as error:  # the alert goes out whatever the lake answers
        return f"unknown: the lake did not answer ({type(error).__name__}: {error})"
    if missing:
        return "; ".join(f"the event log of {day} at {lake.log_where(day)}" for day in missing)
    return f"the run ({run_state}): its files are in the lake"
