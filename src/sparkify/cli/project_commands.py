"""The commands that work on the warehouse and the dbt project without Airflow: manifest, stage, prepare, docs,
check and sql."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import date

from sparkify import summary
from sparkify.settings import settings
from sparkify.warehouses import QueryError, warehouse_for


def cmd_manifest(_: argparse.Namespace) -> int:
    """``dbt parse`` of dbt_sparkify: the manifest the DAG is rendered from (parsing the DAG never runs dbt)."""
    config = settings()
    from sparkify.dbt_run import build_manifest

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


def cmd_docs(_: argparse.Namespace) -> int:
    from sparkify.dbt_run import generate_docs

    index = generate_docs(settings())
    print(f"dbt docs written to {index.parent}; `make airflow` serves them in the Airflow UI", flush=True)
    return 0


def cmd_check(_: argparse.Namespace) -> int:
    """Every data test on all of history (a day's run tests what its day changed)."""
    from sparkify.dbt_run import DAG_DBT_FLAGS, RUN_DATE_ENV, RUN_END_DATE_ENV, run_dbt

    os.environ.update(DAG_DBT_FLAGS)
    os.environ.pop(RUN_DATE_ENV, None)
    os.environ.pop(RUN_END_DATE_ENV, None)
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
