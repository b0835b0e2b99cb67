"""`make backfill`'s progress and its report: the watch of a backfill's runs through the REST API (each task
that fails or waits to retry printed with its try and error as it happens), and the summary printed at the end."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sparkify import summary
from sparkify.local_airflow import (
    DAG_ID,
    TERMINAL_RUN_STATES,
    LocalAirflow,
)
from sparkify.settings import Settings
from sparkify.task_errors import first_error_line as task_error
from sparkify.task_errors import task_log_request

# Only the tasks that failed themselves are named: the ones they stopped are counted as not run.
FAILED_TASK_STATES = {"failed"}


# A task in one of these states is shown as it happens: which try failed, when the next is, the error.
TROUBLE_STATES = {"failed", "up_for_retry"}


def _is_dbt_test(task_id: str) -> bool:
    return task_id.startswith("dbt_sparkify.") and (task_id.endswith(".test") or task_id.endswith("_test"))


@dataclass
class BackfillReport:
    expected: int
    runs: list[dict[str, Any]]
    failed_tasks: dict[str, list[str]]
    tests_passed: int
    tests_failed: int
    tests_not_run: int
    seconds: float

    @property
    def succeeded(self) -> int:
        return sum(run["state"] == "success" for run in self.runs)

    @property
    def failed(self) -> int:
        return sum(run["state"] == "failed" for run in self.runs)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.succeeded == self.expected


def expected_days(start: str, end: str) -> int:
    return (date.fromisoformat(end) - date.fromisoformat(start)).days + 1


def run_label(run: dict[str, Any]) -> str:
    """A run as its days: ``2018-11-01`` or ``2018-11-01 .. 2018-11-07``."""
    first, last = run["logical_date"][:10], run_last_day(run)
    return first if last == first else f"{first} .. {last}"


def run_last_day(run: dict[str, Any]) -> str:
    start, end = (run.get(key) for key in ("data_interval_start", "data_interval_end"))
    if not start or not end or end <= start:
        return run["logical_date"][:10]
    return (datetime.fromisoformat(end) - timedelta(days=1)).date().isoformat()


def staged_days(airflow: LocalAirflow, runs: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """For each running run of several days: its days staged so far, of how many."""
    staged = {}
    for run in runs:
        first, last = run["logical_date"][:10], run_last_day(run)
        if run["state"] == "running" and last != first:
            done = sum(
                ti["task_id"] == "stage_events" and ti["state"] == "success"
                for ti in airflow.task_instances(run["dag_run_id"])
            )
            staged[first] = (done, (date.fromisoformat(last) - date.fromisoformat(first)).days + 1)
    return staged


def progress_line(
    runs: list[dict[str, Any]],
    total: int,
    failed_days: int,
    staged: dict[str, tuple[int, int]] | None = None,
) -> str:
    states = [run["state"] for run in runs]
    staged = staged or {}
    running = [
        run_label(run)
        + (
            " (days staged {}/{})".format(*staged[run["logical_date"][:10]])
            if run["logical_date"][:10] in staged
            else ""
        )
        for run in runs
        if run["state"] == "running"
    ]
    queued = states.count("queued")
    done = states.count("success") + states.count("failed")
    parts = [f"runs done {done}/{total} (succeeded {states.count('success')}, failed {failed_days})"]
    if running:
        parts.append(f"running {', '.join(running)}")
    if queued:
        parts.append(f"{queued} queued")
    return ", ".join(parts)


def task_name(ti: dict[str, Any], day: str) -> str:
    """A task instance as a person names it: a mapped one of a run of several days by its days
    (``stage_events[2018-11-03]``); in the run of ``day`` alone, by its task id."""
    label = ti.get("rendered_map_index") or str(ti.get("map_index", -1))
    if ti.get("map_index", -1) < 0 or label == day:
        return ti["task_id"]
    return f"{ti['task_id']}[{label}]"


def first_error_line(
    airflow: LocalAirflow, run_id: str, task_id: str, try_number: int, map_index: int = -1
) -> str:
    """The first line of the error a task's try failed with, from its log."""
    path, params = task_log_request(DAG_ID, run_id, task_id, try_number, map_index)
    try:
        log = airflow.api(
            "GET",
            path,
            params=params,
            headers={"Accept": "application/json"},
        )
    except Exception as error:  # the progress output never stops the watch
        return f"(log unavailable: {str(error).splitlines()[0]})"
    return task_error(log)


def trouble_line(config: Settings, day: str, ti: dict[str, Any], error: str) -> str:
    """One task that failed or waits to retry: the task, its try, when the next try is, the error's first line."""

    tries = f"try {ti['try_number']} of {ti['max_tries'] + 1}"
    if ti["state"] == "failed":
        last = ti["try_number"] > ti["max_tries"]
        return f"    {day} {task_name(ti, day)} failed on {tries}{' (the last)' if last else ', not retried'}: {error}"
    earliest, latest = config.retry_window(ti["try_number"])
    ended = datetime.fromisoformat(ti["end_date"]) if ti.get("end_date") else None
    when = (
        f"next try between {(ended + earliest):%H:%M:%S} and {(ended + latest):%H:%M:%S} UTC"
        if ended
        else "next try pending"
    )
    return f"    {day} {task_name(ti, day)} {tries} failed, {when}: {error}"


def troubled_tries(
    airflow: LocalAirflow,
    run_id: str,
    day: str,
    ti: dict[str, Any],
    shown: set[tuple[str, str, int, str]],
    since: datetime,
) -> list[dict[str, Any]]:
    """The tries of ``ti`` that failed or wait to retry and are not ``shown`` yet. A retry can start again within
    a poll's interval, so the earlier tries come from the task's history whenever its try number moved past
    one not shown; only those that ended ``since`` (a try of an earlier command is not this watch's)."""
    name = task_name(ti, day)
    unseen = [
        number
        for number in range(1, ti["try_number"])
        if not any((day, name, number, state) in shown for state in TROUBLE_STATES)
    ]
    earlier = []
    if unseen:
        # History keeps a retried try as failed; a later try exists, so it was retried.
        earlier = [
            {**past, "state": "up_for_retry"}
            for past in airflow.tries(run_id, ti["task_id"], ti.get("map_index", -1))
            if past["try_number"] in unseen
            and past["state"] in TROUBLE_STATES
            and past.get("end_date")
            and datetime.fromisoformat(past["end_date"]) >= since
        ]
    current = [ti] if ti["state"] in TROUBLE_STATES else []
    troubled = [
        t for t in earlier + current if (day, task_name(t, day), t["try_number"], t["state"]) not in shown
    ]
    # A past try that did not fail (a success cleared to run again, say) is not looked up again either.
    shown.update((day, name, number, "up_for_retry") for number in unseen)
    return troubled


def watch_backfill(
    airflow: LocalAirflow,
    start: str,
    end: str,
    timeout: float,
    out: Any = sys.stdout,
    expected: int | None = None,
) -> BackfillReport:
    """Poll the runs whose logical dates are in [start, end] until all ``expected`` (default: one per day) are
    finished, printing progress when it changes (with the days staged, for a run of several days), and each
    task that fails or waits to retry as it happens."""
    total = expected or expected_days(start, end)
    started = time.monotonic()
    since = datetime.now(UTC)
    last_line = ""
    failed_tasks: dict[str, list[str]] = {}
    shown: set[tuple[str, str, int, str]] = set()
    while True:
        airflow.check_alive()
        runs = airflow.runs(start, end)
        for run in runs:
            day = run["logical_date"][:10]
            if run["state"] == "running" or (run["state"] == "failed" and day not in failed_tasks):
                for ti in airflow.task_instances(run["dag_run_id"]):
                    for trouble in troubled_tries(airflow, run["dag_run_id"], day, ti, shown, since):
                        shown.add((day, task_name(trouble, day), trouble["try_number"], trouble["state"]))
                        error = first_error_line(
                            airflow,
                            run["dag_run_id"],
                            trouble["task_id"],
                            trouble["try_number"],
                            trouble.get("map_index", -1),
                        )
                        print(trouble_line(airflow.settings, day, trouble, error), file=out, flush=True)
            if run["state"] == "failed" and day not in failed_tasks:
                failed_tasks[day] = sorted(
                    task_name(ti, day)
                    for ti in airflow.task_instances(run["dag_run_id"])
                    if ti["state"] in FAILED_TASK_STATES
                )
                print(
                    f"    {day} failed: {', '.join(failed_tasks[day]) or '(no task failed)'}",
                    file=out,
                    flush=True,
                )
        line = progress_line(runs, total, len(failed_tasks), staged_days(airflow, runs))
        if line != last_line:
            print(f"[{time.monotonic() - started:6.0f}s] {line}", file=out, flush=True)
            last_line = line
        if sum(run["state"] in TERMINAL_RUN_STATES for run in runs) >= total:
            break
        if time.monotonic() - started > timeout:
            print(f"timed out after {timeout:.0f}s: {line}", file=out, flush=True)
            break
        time.sleep(2)
    passed = failed = not_run = 0
    for run in runs:
        for ti in airflow.task_instances(run["dag_run_id"]):
            if _is_dbt_test(ti["task_id"]):
                passed += ti["state"] == "success"
                failed += ti["state"] in FAILED_TASK_STATES
                not_run += ti["state"] not in FAILED_TASK_STATES | {"success"}
    return BackfillReport(
        expected=total,
        runs=runs,
        failed_tasks=failed_tasks,
        tests_passed=passed,
        tests_failed=failed,
        tests_not_run=not_run,
        seconds=time.monotonic() - started,
    )


def print_report(
    report: BackfillReport, config: Settings, start: str, end: str, out: Any = sys.stdout
) -> None:
    total = report.expected
    per_run = report.seconds / max(1, len(report.runs))
    print(
        f"\nBackfill of {DAG_ID} {start} .. {end} ({config.warehouse} warehouse, lake {config.lake})",
        file=out,
    )
    print(
        f"  runs: {report.succeeded} succeeded, {report.failed} failed, {total - len(report.runs)} not created"
        f" — {report.seconds:.0f}s ({per_run:.1f}s per run)",
        file=out,
    )
    for day, tasks in sorted(report.failed_tasks.items()):
        print(f"  {day} failed tasks: {', '.join(tasks) or '(none recorded)'}", file=out)
    print(
        f"  dbt test tasks: {report.tests_passed} passed, {report.tests_failed} failed"
        + (f", {report.tests_not_run} not run (upstream failed)" if report.tests_not_run else ""),
        file=out,
    )
    try:
        counts = summary.table_counts(config)
    except Exception as error:
        print(f"  row counts unavailable: {error}", file=out)
    else:
        print("  rows:", file=out)
        for table, rows in counts.items():
            print(f"    {table:<28} {rows:>10,}", file=out)
    out.flush()
