"""A cursor on the configured warehouse, for the summary, queries and tests (DB-API: execute, fetch*)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sparkify.settings import Settings


@contextmanager
def cursor(settings: Settings, read_only: bool = True) -> Iterator[Any]:
    if settings.warehouse == "duckdb":
        import duckdb

        con = duckdb.connect(str(settings.duckdb_path), read_only=read_only)
        try:
            yield con
        finally:
            con.close()
    elif settings.warehouse == "postgres":
        from sparkify.staging import postgres

        con = postgres.connect(settings)
        try:
            con.set_session(readonly=read_only, autocommit=True)
            with con.cursor() as cur:
                yield cur
        finally:
            con.close()
    else:
        from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

        con = RedshiftSQLHook(redshift_conn_id=settings.redshift_conn_id).get_conn()
        try:
            con.autocommit = True
            cur = con.cursor()
            yield cur
        finally:
            con.close()
