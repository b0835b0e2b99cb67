"""The project's commands, behind the Makefile's targets: ``python -m sparkify.cli COMMAND``.

backfill, demo, airflow run the pipeline through a real Airflow (scheduler, dag-processor, api-server) started
locally; stage, sql, docs and manifest work on the warehouse and the dbt project without Airflow.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sparkify import summary
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
    write_private,
)
from sparkify.settings import Settings, settings
from sparkify.warehouses import QueryError, warehouse_for

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


def expected_days(start: str, end: str) -> int:
    return (date.fromisoformat(end) - date.fromisoformat(start)).days + 1


def progress_line(runs: list[dict[str, Any]], total: int, failed_days: int) -> str:
    states = [run["state"] for run in runs]
    running = [run["logical_date"][:10] for run in runs if run["state"] == "running"]
    queued = states.count("queued")
    done = states.count("success") + states.count("failed")
    parts = [f"runs done {done}/{total} (succeeded {states.count('success')}, failed {failed_days})"]
    if running:
        parts.append(f"running {', '.join(running)}")
    if queued:
        parts.append(f"{queued} queued")
    return ", ".join(parts)


def first_error_line(airflow: LocalAirflow, run_id: str, task_id: str, try_number: int) -> str:
    """The first line of the error a task's try failed with, from its log (the API's structured events)."""
    from urllib.parse import quote

    try:
        log = airflow.api(
            "GET",
            f"/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true"},
            headers={"Accept": "application/json"},
        )
    except Exception as error:  # the progress output never stops the watch
        return f"(log unavailable: {str(error).splitlines()[0]})"
    events = (log.get("content") or []) if isinstance(log, dict) else []
    for event in reversed(events):
        details = event.get("error_detail") if isinstance(event, dict) else None
        if details:
            raised = [d for d in details if not d.get("is_cause")] or details
            text = f"{raised[-1].get('exc_type')}: {raised[-1].get('exc_value')}"
            return text.strip().splitlines()[0]
    for event in reversed(events):
        if isinstance(event, dict) and event.get("level") in {"error", "critical"}:
            return str(event.get("event", "")).strip().splitlines()[0]
    return "(no error in its log: stopped from outside)"


def trouble_line(config: Settings, day: str, ti: dict[str, Any], error: str) -> str:
    """One task that failed or waits to retry: the task, its try, when the next try is, the error's first line."""

    tries = f"try {ti['try_number']} of {ti['max_tries'] + 1}"
    if ti["state"] == "failed":
        last = ti["try_number"] > ti["max_tries"]
        return f"    {day} {ti['task_id']} failed on {tries}{' (the last)' if last else ', not retried'}: {error}"
    earliest, latest = config.retry_window(ti["try_number"])
    ended = datetime.fromisoformat(ti["end_date"]) if ti.get("end_date") else None
    when = (
        f"next try between {(ended + earliest):%H:%M:%S} and {(ended + latest):%H:%M:%S} UTC"
        if ended
        else "next try pending"
    )
    return f"    {day} {ti['task_id']} {tries} failed, {when}: {error}"


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
    unseen = [
        number
        for number in range(1, ti["try_number"])
        if not any((day, ti["task_id"], number, state) in shown for state in TROUBLE_STATES)
    ]
    earlier = []
    if unseen:
        # History keeps a retried try as failed; a later try exists, so it was retried.
        earlier = [
            {**past, "state": "up_for_retry"}
            for past in airflow.tries(run_id, ti["task_id"])
            if past["try_number"] in unseen
            and past["state"] in TROUBLE_STATES
            and past.get("end_date")
            and datetime.fromisoformat(past["end_date"]) >= since
        ]
    current = [ti] if ti["state"] in TROUBLE_STATES else []
    troubled = [t for t in earlier + current if (day, t["task_id"], t["try_number"], t["state"]) not in shown]
    # A past try that did not fail (a success cleared to run again, say) is not looked up again either.
    shown.update((day, ti["task_id"], number, "up_for_retry") for number in unseen)
    return troubled


def watch_backfill(
    airflow: LocalAirflow, start: str, end: str, timeout: float, out: Any = sys.stdout
) -> BackfillReport:
    """Poll the runs of [start, end] until all are finished, printing progress when it changes, and each task
    that fails or waits to retry as it happens."""
    total = expected_days(start, end)
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
                        shown.add((day, trouble["task_id"], trouble["try_number"], trouble["state"]))
                        error = first_error_line(
                            airflow, run["dag_run_id"], trouble["task_id"], trouble["try_number"]
                        )
                        print(trouble_line(airflow.settings, day, trouble, error), file=out, flush=True)
            if run["state"] == "failed" and day not in failed_tasks:
                failed_tasks[day] = sorted(
                    ti["task_id"]
                    for ti in airflow.task_instances(run["dag_run_id"])
                    if ti["state"] in FAILED_TASK_STATES
                )
                print(
                    f"    {day} failed: {', '.join(failed_tasks[day]) or '(no task failed)'}",
                    file=out,
                    flush=True,
                )
        line = progress_line(runs, total, len(failed_tasks))
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
    total = expected_days(start, end)
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


def cmd_backfill(args: argparse.Namespace, keep_ui: bool) -> int:
    config = settings()
    warehouse_for(config).prepare()
    port = int(os.environ.get("SPARKIFY_AIRFLOW_PORT", "8080"))
    print(f"Starting Airflow (AIRFLOW_HOME {airflow_home(config)}) on port {port} ...", flush=True)
    with running(config, port, scheduler_after_backfill=True) as airflow:
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
        reports = airflow.wait_reports_done()
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
            print(
                f"\nAirflow UI: {airflow.url}  (login: admin / {admin_password(airflow.home)})\n"
                "Press Ctrl-C to stop.",
                flush=True,
            )
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                print("\nStopping Airflow ...", flush=True)
        return 0 if report.ok else 1


def cmd_airflow(_: argparse.Namespace) -> int:
    config = settings()
    port = int(os.environ.get("SPARKIFY_AIRFLOW_PORT", "8080"))
    with running(config, port) as airflow:
        print(
            f"dbt docs: {airflow.url}{DOCS_PATH}\n"
            f"Airflow UI: {airflow.url}  (login: admin / {admin_password(airflow.home)})\nPress Ctrl-C to stop.",
            flush=True,
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("\nStopping Airflow ...", flush=True)
    return 0


def cmd_manifest(_: argparse.Namespace) -> int:
    """``dbt parse`` of dbt_sparkify: the manifest the DAG is rendered from (parsing the DAG never runs dbt)."""
    config = settings()
    from sparkify.dbt import build_manifest

    path = build_manifest(config)
    print(f"dbt manifest written to {path}", flush=True)
    return 0


def cmd_stage(args: argparse.Namespace) -> int:
    """Stage one day and the song files without Airflow, so the dbt models can be worked on."""
    config = settings()
    day = date.fromisoformat(args.date)
    warehouse = warehouse_for(config)
    warehouse.prepare()
    for result in (warehouse.stage_songs(), warehouse.stage_events(day)):
        print(
            f"staged {result['rows']:>8,} rows from {result['files']} file(s) into {result['table']}, "
            f"{result['quarantined']:,} record(s) quarantined",
            flush=True,
        )
    return 0


def cmd_prepare(_: argparse.Namespace) -> int:
    """What a new deployment runs once: the warehouse's database and the dbt manifest the DAG is rendered from."""
    config = settings()
    warehouse_for(config).prepare()
    print(f"warehouse ready ({config.warehouse})", flush=True)
    return cmd_manifest(_)


def cmd_upload_lake(args: argparse.Namespace) -> int:
    """The compose stack's first start: the generated sample lake into the object store (SPARKIFY_LAKE)."""
    from sparkify.lake import Lake

    config = settings()
    lake = Lake(config.lake, config.aws_conn_id)
    if lake.is_local:
        print(f"error: SPARKIFY_LAKE={config.lake} is not an s3:// lake", file=sys.stderr)
        return 2
    count = lake.upload(Path(args.source))
    print(f"uploaded {count} file(s) from {args.source} to {config.lake}", flush=True)
    return 0


# The secrets docker-compose.yaml requires, each generated once into .env (kept out of git).
STACK_SECRETS = (
    "AIRFLOW_DB_PASSWORD",
    "AIRFLOW_DB_ADMIN_PASSWORD",
    "AIRFLOW_ADMIN_PASSWORD",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW_FERNET_KEY",
    "WAREHOUSE_PASSWORD",
    "WAREHOUSE_ADMIN_PASSWORD",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
)


def stack_values(existing: dict[str, str]) -> dict[str, str]:
    """The .env of the full stack: existing values kept, missing ones generated."""
    import base64
    import secrets

    generated = {
        name: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        if name == "AIRFLOW_FERNET_KEY"
        else ("sparkify-" + secrets.token_hex(4) if name == "MINIO_ROOT_USER" else secrets.token_urlsafe(24))
        for name in STACK_SECRETS
    }
    return {"AIRFLOW_UID": str(os.getuid()), **generated, **existing}


def cmd_stack_env(_: argparse.Namespace) -> int:
    path = settings().root / ".env"
    existing = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                name, value = line.split("=", 1)
                existing[name.strip()] = value.strip()
    values = stack_values(existing)
    write_private(path, "".join(f"{name}={value}\n" for name, value in values.items()))
    added = sorted(values.keys() - existing.keys())
    print(
        f"{path}: {len(added)} value(s) generated ({', '.join(added) or 'none'}), {len(existing)} kept",
        flush=True,
    )
    return 0


def cmd_docs(_: argparse.Namespace) -> int:
    from sparkify.dbt import generate_docs

    index = generate_docs(settings())
    print(f"dbt docs written to {index.parent}; `make airflow` serves them in the Airflow UI", flush=True)
    return 0


def cmd_check(_: argparse.Namespace) -> int:
    """Every data test on all of history (a day's run tests what its day changed)."""
    from sparkify.dbt import DAG_DBT_FLAGS, RUN_DATE_ENV, run_dbt

    os.environ.update(DAG_DBT_FLAGS)
    os.environ.pop(RUN_DATE_ENV, None)
    # A target of its own: dbt_sparkify/target keeps the manifest the DAG is rendered from.
    try:
        with tempfile.TemporaryDirectory(prefix="sparkify-check-") as target:
            run_dbt(settings(), "test", "--target-path", target)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("every data test passed on all of history", flush=True)
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    try:
        columns, rows = summary.query(settings(), args.query)
    except QueryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary.format_table(columns, rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparkify.cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        (
            "backfill",
            "backfill a date range through the scheduler, print a summary, exit non-zero on failure",
        ),
        ("demo", "the backfill, then keep the Airflow UI up until Ctrl-C"),
    ):
        command = sub.add_parser(name, help=help_text)
        command.add_argument("--start", default="2018-11-01", help="first day, YYYY-MM-DD")
        command.add_argument("--end", default="2018-11-30", help="last day, YYYY-MM-DD")
        command.add_argument(
            "--max-active-runs", type=int, default=0, help="default: SPARKIFY_MAX_ACTIVE_RUNS"
        )
        command.add_argument("--timeout", type=float, default=3 * 3600, help="seconds to wait (default 3 h)")
    sub.add_parser("airflow", help="start Airflow with the UI only, until Ctrl-C")
    sub.add_parser("manifest", help="build dbt_sparkify/target/manifest.json (dbt parse)")
    stage = sub.add_parser("stage", help="stage one day of logs and the song files, without Airflow")
    stage.add_argument("--date", required=True, help="the day of logs, YYYY-MM-DD")
    sql = sub.add_parser("sql", help="run one read-only SQL query on the warehouse and print the rows")
    sql.add_argument("query")
    sub.add_parser("docs", help="generate the dbt docs into the folder the Airflow UI serves")
    sub.add_parser("check", help="run every dbt data test on all of history (not only a day's changes)")
    sub.add_parser("prepare", help="create the warehouse's database (PostgreSQL) and build the dbt manifest")
    sub.add_parser("stack-env", help="write .env with generated secrets for docker-compose.yaml")
    upload = sub.add_parser(
        "upload-lake", help="copy a local lake (sparkify.datagen's output) to the S3 lake"
    )
    upload.add_argument("source", help="the local lake's folder")
    args = parser.parse_args(argv)
    if args.command == "docs":
        return cmd_docs(args)
    if args.command == "check":
        return cmd_check(args)
    if args.command == "prepare":
        return cmd_prepare(args)
    if args.command == "stack-env":
        return cmd_stack_env(args)
    if args.command == "upload-lake":
        return cmd_upload_lake(args)
    if args.command == "sql":
        return cmd_sql(args)
    if args.command == "manifest":
        return cmd_manifest(args)
    if args.command == "stage":
        return cmd_stage(args)
    stop_on_signals()
    try:
        if args.command in {"backfill", "demo"}:
            for value in (args.start, args.end):
                date.fromisoformat(value)
            if args.start > args.end:
                parser.error(f"--start {args.start} is after --end {args.end}")
            return cmd_backfill(args, keep_ui=args.command == "demo")
        return cmd_airflow(args)
    except KeyboardInterrupt as interrupt:  # while Airflow was starting or stopping: it is stopped
        print(f"\nStopped ({interrupt})", flush=True)
        return exit_code(interrupt)


if __name__ == "__main__":
    raise SystemExit(main())
