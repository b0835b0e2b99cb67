"""The commands that run the pipeline through a local Airflow (scheduler, dag-processor, api-server): backfill,
demo and airflow, and how Ctrl-C and SIGTERM stop them."""

from __future__ import annotations

import argparse
import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sparkify.cli.watch import print_report, watch_backfill
from sparkify.dbt_docs import DOCS_PATH
from sparkify.health import HEALTH_PATH, HEALTH_ROUTE
from sparkify.local_airflow import (
    DAG_ID,
    REPORT_DAG_ID,
    admin_password,
    airflow_home,
    running,
)
from sparkify.settings import settings
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


def cmd_backfill(args: argparse.Namespace, keep_ui: bool) -> int:
    config = settings()
    warehouse_for(config).prepare()
    port = int(os.environ.get("SPARKIFY_AIRFLOW_PORT", "8080"))
    print(f"Starting Airflow (AIRFLOW_HOME {airflow_home(config)}) on port {port} ...", flush=True)
    with running(config, port, scheduler_after_backfill=True) as airflow:
        created_at = datetime.now(UTC)
        backfill = airflow.create_backfill(
            args.start, args.end, args.max_active_runs or config.max_active_runs
        )
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
