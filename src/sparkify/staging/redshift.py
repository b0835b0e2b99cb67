"""Staging on Redshift: the provider's S3ToRedshiftOperator copies straight from the S3 lake.

``prepare`` creates the landing tables (DDL in redshift_sql/) and the run's load table for the song files.
``stage_events``, one mapped task instance per day of the run (or per batch of days, on a long run), creates
each day's load table, COPYs the day's log into it (JSONPaths shipped in redshift_sql/events_jsonpaths.json and uploaded to the lake) and publishes it;
``stage_songs.copy`` (JSON 'auto ignorecase') loads the song files, published by ``stage_songs.publish``. Each
COPY may reject records (``MAXERROR``); publishing reads what COPY rejected from ``stl_load_errors``, fails
with the same ``BadInputError`` as the other warehouses when more than the allowed share was rejected
(publishing nothing), and otherwise replaces the day's events (or all songs) and their quarantine in one
transaction. The operator's UPSERT and REPLACE methods were not used: COPY
cannot set the day column, an upsert keeps lines removed from a corrected file, and a REPLACE commits before
its rejects can be counted.

Credentials: the Airflow connections redshift_default and aws_default (keys, or an IAM role as the
connection's role_arn extra), nothing else.
"""

from __future__ import annotations

import logging
import re
from contextlib import closing
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from sparkify.lake import Lake
from sparkify.settings import Settings
from sparkify.staging import rules, schema
from sparkify.staging.result import StageResult

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).with_name("redshift_sql")
JSONPATHS_FILE = SQL_DIR / "events_jsonpaths.json"
JSONPATHS_KEY = "jsonpaths/events_jsonpaths.json"
# COPY's own ceiling on rejected records. The share allowed is checked exactly by publish, which knows how
# many records the file held; COPY only has to keep going long enough to report them.
COPY_MAX_ERRORS = 100_000
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9!_.*()/-]*)?$")


def read_sql(name: str) -> str:
    return (SQL_DIR / name).read_text()


def jsonpaths_uri(settings: Settings) -> str:
    uri = settings.redshift_jsonpaths or Lake(settings.lake).uri(JSONPATHS_KEY)
    if not _S3_URI.match(uri) or ".." in uri:
        raise ValueError(
            f"SPARKIFY_REDSHIFT_JSONPATHS must be an s3://bucket/key URI of plain characters, got {uri!r}"
        )
    return uri


def max_errors(settings: Settings) -> int:
    """COPY's MAXERROR: none when no record may be quarantined, else COPY's ceiling."""
    return 0 if settings.allowance.none else COPY_MAX_ERRORS


def copy_options(settings: Settings, json_format: str) -> list[str]:
    """COPY's options. Values are loaded as they are: no BLANKSASNULL/EMPTYASNULL (an empty string stays one,
    as on every warehouse) and no TRUNCATECOLUMNS (a value too long is a rejected record, not a cut one). The
    load tables are dropped after publishing: no compression analysis or statistics for them."""
    options = [
        f"FORMAT AS JSON '{json_format}'",
        f"MAXERROR {max_errors(settings)}",
        "COMPUPDATE OFF",
        "STATUPDATE OFF",
    ]
    if settings.redshift_region:
        if not _REGION.match(settings.redshift_region):
            raise ValueError(
                f"SPARKIFY_REDSHIFT_REGION must be an AWS region such as us-west-2, got {settings.redshift_region!r}"
            )
        options.append(f"REGION '{settings.redshift_region}'")
    return options


@dataclass(frozen=True)
class Rejects:
    """What one COPY rejected: how many records, and the first of them."""

    table_id: int
    count: int
    first: list[rules.Bad]


def load_rejects(cur: Any, raw_schema: str, table: str) -> Rejects:
    """The records COPY rejected while loading ``raw_schema.table``, from ``stl_load_errors``."""
    table_sql, errors_sql = split_statements(read_sql("load_errors.sql"))
    cur.execute(table_sql, (raw_schema, table))
    row = cur.fetchone()
    if row is None:
        raise RuntimeError(f"{raw_schema}.{table} does not exist: was stage_events.prepare run for this day?")
    table_id = int(row[0])
    cur.execute(errors_sql, (table_id,))
    rows = cur.fetchall()
    first = [rules.Bad(filename, line, raw_line, reason) for _, line, filename, raw_line, reason in rows]
    return Rejects(table_id, int(rows[0][0]) if rows else 0, first)


def split_statements(sql: str) -> list[str]:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    return DbApiHook.split_sql_string(sql, strip_semicolon=True)


def publish(
    settings: Settings, table: schema.RawTable, sql: str, load_table: str, source: str, unit: str
) -> StageResult:
    """Check what COPY rejected from ``load_table`` against the allowance, then run ``sql`` (rendered by Airflow
    for the run) to replace the landing rows of ``table`` and their quarantine in one transaction."""
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    target = f"{settings.raw_schema}.{table.name}"
    hook = RedshiftSQLHook(redshift_conn_id=settings.redshift_conn_id)
    with closing(hook.get_conn()) as con:
        con.autocommit = True
        with closing(con.cursor()) as cur:
            rejects = load_rejects(cur, settings.raw_schema, load_table)
            cur.execute(f"select count(*) from {settings.raw_schema}.{load_table}")
            loaded = int(cur.fetchone()[0])
            records = loaded + rejects.count
            rules.check_allowance(source, records, rejects.count, rejects.first, settings.allowance, unit)
            log.info("replacing rows of %s in one transaction", target)
            for statement in split_statements(sql):
                cur.execute(statement, (rejects.table_id,) if "%s" in statement else None)
    log.info(
        "staged %s rows from %s into %s; %s of %s %s quarantined",
        loaded,
        source,
        target,
        rejects.count,
        records,
        unit,
    )
    return StageResult(target, loaded, 1, source, records=records, quarantined=rejects.count)


def render_sql(name: str, **values: object) -> str:
    """One of redshift_sql/'s statements for a day, rendered with ``values`` (a missing one is an error)."""
    import jinja2

    return jinja2.Template(read_sql(name), undefined=jinja2.StrictUndefined).render(**values)


def execute_sql(settings: Settings, sql: str) -> None:
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    hook = RedshiftSQLHook(redshift_conn_id=settings.redshift_conn_id)
    with closing(hook.get_conn()) as con:
        con.autocommit = True
        with closing(con.cursor()) as cur:
            for statement in split_statements(sql):
                cur.execute(statement)


@cache
def day_log_stage() -> type:
    """``S3ToRedshiftOperator`` for a run's days (``days``, ISO dates: the operator is mapped over the run's
    batches of days). For each day in order it checks that the day's file is there (a missing day fails, not
    retried: waiting cannot bring it, naming the file, as on every warehouse), copies it into the day's own load
    table, then publishes it (``publish``). (Defined on first use: the provider is imported only by a Redshift
    deployment.)"""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.amazon.aws.transfers.s3_to_redshift import S3ToRedshiftOperator

    from sparkify.lake import LakeError
    from sparkify.run_days import label
    from sparkify.settings import settings as current_settings
    from sparkify.warehouses import each_day

    def load_table(day: str) -> str:
        return f"{schema.EVENTS.name}_{day.replace('-', '')}"

    class DayLogStage(S3ToRedshiftOperator):
        template_fields = (*S3ToRedshiftOperator.template_fields, "days")

        def __init__(self, *, days: list[str], key_prefix: str, **kwargs: Any) -> None:
            self.days = days
            self.key_prefix = key_prefix
            super().__init__(
                table=load_table(days[0]),
                s3_key=key_prefix + Lake.log_key(date.fromisoformat(days[0])),
                method="APPEND",
                **kwargs,
            )

        def execute(self, context: Any) -> Any:
            context["days_label"] = label(
                self.days
            )  # the mapped instance's name in the UI (map_index_template)
            return each_day(self.days, lambda day: self.stage_day(day, context))

        def stage_day(self, day: str, context: Any) -> dict[str, object]:
            key = Lake.log_key(date.fromisoformat(day))
            self.table, self.s3_key = load_table(day), self.key_prefix + key
            if not S3Hook(aws_conn_id=self.aws_conn_id).check_for_key(self.s3_key, self.s3_bucket):
                raise LakeError(f"no event log for {day}: expected s3://{self.s3_bucket}/{self.s3_key}")
            settings = current_settings()
            values = {
                "raw_schema": settings.raw_schema,
                "lake": settings.lake.rstrip("/"),
                "day": day,
                "day_nodash": day.replace("-", ""),
                "log_key": key,
            }
            execute_sql(settings, render_sql("create_day_load_table.sql", **values))
            super().execute(context)
            sql = render_sql("publish_events_day.sql", **values)
            return publish(
                settings, schema.EVENTS, sql, self.table, f"{values['lake']}/{key}", "lines"
            ).__dict__

    return DayLogStage


def staging_tasks(settings: Settings, batches: Any) -> list[Any]:
    """The staging steps of the DAG on Redshift: ``prepare``, then ``stage_events`` (mapped over the run's
    ``batches`` of days) and the ``stage_songs`` task group."""
    from airflow.providers.amazon.aws.transfers.s3_to_redshift import S3ToRedshiftOperator
    from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
    from airflow.sdk import TaskGroup, task

    from sparkify.alerts import no_retry

    lake = Lake(settings.lake)
    bucket, prefix = lake.bucket_and_prefix()
    key_prefix = f"{prefix}/" if prefix else ""
    lake_uri = settings.lake.rstrip("/")
    params = {"raw_schema": settings.raw_schema, "lake": lake_uri}
    connections = {"redshift_conn_id": settings.redshift_conn_id, "aws_conn_id": settings.aws_conn_id}

    # The SQL, the load table and the source are task arguments, so Airflow renders them for the run (and shows
    # them under Rendered Template).
    @task(params=params)
    def publish_songs(sql: str, load_table: str, source: str) -> dict[str, object]:
        with no_retry():
            return publish(settings, schema.SONGS, sql, load_table, source, "song files").__dict__

    prepare = SQLExecuteQueryOperator(
        task_id="prepare",
        conn_id=settings.redshift_conn_id,
        sql=read_sql("create_staging_tables.sql"),
        params=params,
        split_statements=True,
    )
    stage_events = (
        day_log_stage()
        .partial(
            task_id="stage_events",
            schema=settings.raw_schema,
            s3_bucket=bucket,
            key_prefix=key_prefix,
            column_list=[column.name for column in schema.EVENTS.columns],
            copy_options=copy_options(settings, jsonpaths_uri(settings)),
            map_index_template="{{ days_label }}",
            max_active_tis_per_dagrun=settings.staging_parallelism,
            **connections,
        )
        .expand(days=batches)
    )

    with TaskGroup(group_id="stage_songs") as stage_songs:
        copy_songs = S3ToRedshiftOperator(
            task_id="copy",
            schema=settings.raw_schema,
            table=schema.SONGS.name + "_{{ ds_nodash }}",
            s3_bucket=bucket,
            s3_key=f"{key_prefix}song_data",
            column_list=[column.name for column in schema.SONGS.columns],
            copy_options=copy_options(settings, "auto ignorecase"),
            method="APPEND",
            **connections,
        )
        copy_songs >> publish_songs.override(task_id="publish")(
            sql=read_sql("publish_songs.sql"),
            load_table=schema.SONGS.name + "_{{ ds_nodash }}",
            source=f"{lake_uri}/song_data",
        )
    prepare >> [stage_events, copy_songs]
    return [stage_events, stage_songs]
