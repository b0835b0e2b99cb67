"""The commands that run the pipeline through a local Airflow (scheduler, dag-processor, api-server): backfill,
demo and airflow, and how Ctrl-C and SIGTERM stop them."""

from __future__ import annotations

import argparse
import os
import signal
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from sparkify.cli.watch import BackfillReport, print_report, watch_backfill
from sparkify.dbt_docs import DOCS_PATH
from sparkify.health import HEALTH_PATH, HEALTH_ROUTE
from sparkify.local_airflow import (
    DAG_ID,
    REPORT_DAG_ID,
    TERMINAL_RUN_STATES,
    LocalAirflow,
    admin_password,
    airflow_home,
    running,
)
from sparkify.settings import Settings, settings
from sparkify.warehouses import warehouse_for


class Stopped(KeyboardInterrupt):
    """SIGTERM, SIGINT or SIGHUP: stop as Ctrl-C does, every started process with it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def stop_on_signals() -> None:
    """Make SIGTERM (a supervisor, ``timeout``, ``docker stop``, make passing on its own), SIGINT and SIGHUP
    unwind the command like Ctrl-C, so that Airflow's processes are stopped on the way out. Signals after the
    first are ignored: they would interrupt the shutdown itself."""

    def handler(signum: int, _: Any) -> None:
        for stop_signal in STOP_SIGNALS:
            signal.signal(stop_signal, signal.SIG_IGN)
        raise Stopped(signum)

    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, handler)


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """The shell's code for a command ended by a signal: 128 + its number."""
    return 128 + (interrupt.signum if isinstance(interrupt, Stopped) else signal.SIGINT)


def day_ranges(start: str, end: str, days_per_run: int | None) -> list[tuple[date, date]]:
    """[start, end] cut into runs of ``days_per_run`` days (None: one run), in date order."""
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    size = days_per_run or (last - first).days + 1
    ranges = []
    while first <= last:
        ranges.append((first, min(last, first + timedelta(days=size - 1))))
        first += timedelta(days=size)
    return ranges


def backfill_per_day(
    airflow: LocalAirflow, args: argparse.Namespace, config: Settings
) -> BackfillReport | int:
    """Airflow's own backfill, one run per day: the report, or the exit code when interrupted."""
    backfill = airflow.create_backfill(args.start, args.end, args.max_active_runs or config.max_active_runs)
    print(
        f"Backfill {backfill['id']} of {DAG_ID} created for {args.start} .. {args.end}; "
        f"follow it at {airflow.url}/dags/{DAG_ID}",
        flush=True,
    )
    try:
        report = watch_backfill(airflow, args.start, args.end, timeout=args.timeout)
    except KeyboardInterrupt as interrupt:
        print(f"\nInterrupted ({interrupt}): cancelling backfill {backfill['id']} ...", flush=True)
        try:
            marked = airflow.abandon_backfill(backfill["id"], args.start, args.end)
        except Exception as error:  # stopping Airflow matters more: the next backfill cancels it then
            print(f"  could not cancel it ({str(error).splitlines()[0]})", flush=True)
        else:
            print(
                f"  unfinished runs marked failed: {', '.join(marked) or 'none'}; "
                "the next `make backfill` of those days runs them again",
                flush=True,
            )
        print("Stopping Airflow ...", flush=True)
        return exit_code(interrupt)
    if not airflow.wait_backfill_completed(backfill["id"]):
        print(
            f"Backfill {backfill['id']} not marked complete by the scheduler yet: the next backfill cancels it, "
            "after which Airflow starts none of its runs again (clear them with a new `make backfill`).",
            flush=True,
        )
    return report


def backfill_in_ranges(
    airflow: LocalAirflow, args: argparse.Namespace, ranges: list[tuple[date, date]]
) -> BackfillReport | int:
    """One run per range of days, created through the REST API with its data interval, in date order, each
    once the one before has finished: the report, or the exit code when interrupted."""
    airflow.unpause()
    started = time.monotonic()
    runs: list[dict[str, Any]] = []
    failed_tasks: dict[str, list[str]] = {}
    tests = [0, 0, 0]
    for first, last in ranges:
        run = airflow.create_range_run(first, last)
        print(
            f"Run {run['dag_run_id']} of {DAG_ID} created for {first} .. {last}; "
            f"follow it at {airflow.url}/dags/{DAG_ID}/runs/{quote(run['dag_run_id'], safe='')}",
            flush=True,
        )
        remaining = args.timeout - (time.monotonic() - started)
        try:
            part = watch_backfill(
                airflow, first.isoformat(), first.isoformat(), timeout=remaining, expected=1
            )
        except KeyboardInterrupt as interrupt:
            print(f"\nInterrupted ({interrupt}): marking run {run['dag_run_id']} failed ...", flush=True)
            try:
                airflow.mark_failed(run["dag_run_id"])
            except Exception as error:  # stopping Airflow matters more
                print(f"  could not mark it ({str(error).splitlines()[0]})", flush=True)
            else:
                print(f"  the next `make backfill` of {first} .. {last} runs those days again", flush=True)
            print("Stopping Airflow ...", flush=True)
            return exit_code(interrupt)
        runs += part.runs
        failed_tasks |= part.failed_tasks
        tests = [tests[0] + part.tests_passed, tests[1] + part.tests_failed, tests[2] + part.tests_not_run]
        if not part.runs or part.runs[0]["state"] not in TERMINAL_RUN_STATES:
            break  # timed out: the report says so
    return BackfillReport(
        expected=len(ranges),
        runs=runs,
        failed_tasks=failed_tasks,
        tests_passed=tests[0],
        tests_failed=tests[1],
        tests_not_run=tests[2],
        seconds=time.monotonic() - started,
    )


def cmd_backfill(args: argparse.Namespace, keep_ui: bool) -> int:
    config = settings()
    warehouse_for(config).prepare()
    port = int(os.environ.get("SPARKIFY_AIRFLOW_PORT", "8080"))
    per_day = args.days_per_run == 1
    print(f"Starting Airflow (AIRFLOW_HOME {airflow_home(config)}) on port {port} ...", flush=True)
    with running(config, port, scheduler_after_backfill=per_day) as airflow:
        created_at = datetime.now(UTC)
        if per_day:
            report = backfill_per_day(airflow, args, config)
        else:
            report = backfill_in_ranges(airflow, args, day_ranges(args.start, args.end, args.days_per_run))
        if isinstance(report, int):
            return report
        print_report(report, config, args.start, args.end)
        # The listening reports the runs' asset events started, finished before Airflow stops.
        reports = airflow.wait_reports_done(since=created_at)
        states = Counter(run["state"] for run in reports)
        print(
            f"  {REPORT_DAG_ID}: {', '.join(f'{n} {state}' for state, n in sorted(states.items())) or 'no run'}",
            flush=True,
        )
        if keep_ui:
            print(
                f"\nSparkify health (days, tests, anomaly flags): {airflow.url}{HEALTH_PATH}"
                f"\n  (in the UI: Browse > Sparkify health, {airflow.url}/plugin/{HEALTH_ROUTE})",
                flush=True,
            )
            print(f"dbt docs (lineage, models, columns): {airflow.url}{DOCS_PATH}", flush=True)
            print(
                f"\nThe warehouse is {warehouse_for(config).describe()}; try:\n"
                '  make sql Q="select level, count(*) as plays from analytics.fct_songplays group by 1"',
                flush=True,
            )
            keep_up_until_ctrl_c(
                f"\nAirflow UI: {airflow.url}  (login: admin / {admin_password(airflow.home)})"
            )
        return 0 if report.ok else 1


def cmd_airflow(_: argparse.Namespace) -> int:
    config = settings()
    port = int(os.environ.get("SPARKIFY_AIRFLOW_PORT", "8080"))
    with running(config, port) as airflow:
        keep_up_until_ctrl_c(
            f"dbt docs: {airflow.url}{DOCS_PATH}\n"
            f"Airflow UI: {airflow.url}  (login: admin / {admin_password(airflow.home)})"
        )
    return 0


def keep_up_until_ctrl_c(where: str) -> None:
    """Leave Airflow running for a person to look at; Ctrl-C (or SIGTERM, as a KeyboardInterrupt) stops it. The
    prompt is printed inside the wait, so that a Ctrl-C the moment it appears stops Airflow the same way."""
    try:
        print(f"{where}\nPress Ctrl-C to stop.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nStopping Airflow ...", flush=True)
