"""The project's commands, behind the Makefile's targets: ``python -m sparkify.cli COMMAND``.

backfill, demo, airflow run the pipeline through a real Airflow (scheduler, dag-processor, api-server) started
locally (``airflow_commands``, with the backfill's progress watch and report in ``watch``); stage, sql, docs,
check and manifest work on the warehouse and the dbt project without Airflow (``project_commands``); stack-env
and upload-lake serve the compose stack (``stack_commands``). This module is the command line only.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date

from sparkify.cli.airflow_commands import cmd_airflow, cmd_backfill, exit_code, stop_on_signals
from sparkify.cli.project_commands import cmd_check, cmd_docs, cmd_manifest, cmd_prepare, cmd_sql, cmd_stage
from sparkify.cli.stack_commands import cmd_stack_env, cmd_upload_lake

# The commands that start no Airflow, and so need no signal handling of their own.
WITHOUT_AIRFLOW: dict[str, Callable[[argparse.Namespace], int]] = {
    "docs": cmd_docs,
    "check": cmd_check,
    "prepare": cmd_prepare,
    "stack-env": cmd_stack_env,
    "upload-lake": cmd_upload_lake,
    "sql": cmd_sql,
    "manifest": cmd_manifest,
    "stage": cmd_stage,
}


def days_per_run(value: str) -> int | None:
    """--days-per-run: a whole number of days, 1 or more, or ``all`` (None: one run over the range)."""
    if value.strip().lower() == "all":
        return None
    if not value.strip().isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of days, 1 or more, or all; got {value!r}")
    return int(value)


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
        command.add_argument(
            "--days-per-run",
            type=days_per_run,
            default=1,
            help="days each DAG run covers: 1 (default: Airflow's own backfill, a run per day), N, or all",
        )
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
    if args.command in WITHOUT_AIRFLOW:
        return WITHOUT_AIRFLOW[args.command](args)
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
