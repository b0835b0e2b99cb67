"""The days a run of ``sparkify_daily`` covers: its data interval, ``[data_interval_start, data_interval_end)``,
in whole days. A run on the ``@daily`` schedule, or one of Airflow's own backfill, has an empty interval (the
schedule triggers at a point in time): it covers the day of its logical date (``ds``). A run created with a
wider interval (``make backfill DAYS_PER_RUN=N``, the REST API) covers every day in it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

# The run's first and last day as dbt reads them (SPARKIFY_RUN_DATE, SPARKIFY_RUN_END_DATE), rendered by Airflow
# for each dbt task: the same days as ``run_days`` (which the run checks first, before any task uses them).
FIRST_DAY_TEMPLATE = "{{ data_interval_start | ds }}"
LAST_DAY_TEMPLATE = (
    "{{ (data_interval_end - macros.timedelta(days=1) if data_interval_end > data_interval_start "
    "else data_interval_start) | ds }}"
)


class IntervalError(ValueError):
    """A data interval that is not a whole number of days."""


def run_days(start: datetime, end: datetime) -> list[date]:
    """The days of the data interval ``[start, end)``; the day of ``start`` when the interval is empty."""
    if end <= start:
        return [start.astimezone(UTC).date()]
    for bound in (start, end):
        if bound.astimezone(UTC).timetz().replace(tzinfo=None) != time():
            raise IntervalError(
                f"the data interval {start.isoformat()} .. {end.isoformat()} must start and end at midnight UTC: "
                "a run covers whole days"
            )
    first, last = start.astimezone(UTC).date(), end.astimezone(UTC).date()
    return [first + timedelta(days=offset) for offset in range((last - first).days)]


def batches(days: list[date], max_tasks: int) -> list[list[date]]:
    """The run's days as the staging task instances take them, in order: one day each while the run has at most
    ``max_tasks`` days, else runs of consecutive days, as even as can be, ``max_tasks`` instances in all (each
    instance costs Airflow a process: a year staged a day a task would cost minutes of it)."""
    count = min(len(days), max_tasks)
    size, extra = divmod(len(days), count)
    out, start = [], 0
    for index in range(count):
        end = start + size + (index < extra)
        out.append(days[start:end])
        start = end
    return out


def label(days: list[str]) -> str:
    """A staging task instance's name in the grid: its day, or its first and last."""
    return days[0] if len(days) == 1 else f"{days[0]} .. {days[-1]}"


def interval(first: date, last: date) -> tuple[datetime, datetime]:
    """The data interval of a run over ``first`` .. ``last`` (both included)."""
    start = datetime.combine(first, time(), UTC)
    return start, datetime.combine(last + timedelta(days=1), time(), UTC)
