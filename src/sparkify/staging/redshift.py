"""Staging on Redshift: the provider's S3ToRedshiftOperator copies straight from the S3 lake.

Events: ``prepare`` creates the tables (DDL in redshift_sql/) and a load table for the run's day; ``copy``
(S3ToRedshiftOperator, JSONPaths shipped in redshift_sql/events_jsonpaths.json and uploaded to the lake) loads
the day's file into it; ``publish`` replaces the day in staging_events in one transaction. The operator's
UPSERT was not used: COPY cannot set the day column, and an upsert keeps lines removed from a corrected file.
Songs: the operator's REPLACE method (delete and copy in one transaction), JSON 'auto ignorecase'.
Credentials: the Airflow connections redshift_default and aws_default (keys, or an IAM role as the
connection's role_arn extra), nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparkify.lake import LOG_KEY_TEMPLATE, Lake
from sparkify.settings import Settings
from sparkify.staging import schema

SQL_DIR = Path(__file__).with_name("redshift_sql")
JSONPATHS_FILE = SQL_DIR / "events_jsonpaths.json"
JSONPATHS_KEY = "jsonpaths/events_jsonpaths.json"


def read_sql(name: str) -> str:
    return (SQL_DIR / name).read_text()


def jsonpaths_uri(settings: Settings) -> str:
    return settings.redshift_jsonpaths or Lake(settings.lake).uri(JSONPATHS_KEY)


def copy_options(settings: Settings, json_format: str) -> list[str]:
    options = [f"FORMAT AS JSON '{json_format}'", "BLANKSASNULL", "EMPTYASNULL", "TRUNCATECOLUMNS"]
    if settings.redshift_region:
        options.append(f"REGION '{settings.redshift_region}'")
    return options


def staging_tasks(settings: Settings) -> list[Any]:
    """The two staging steps of the DAG on Redshift: the stage_events task group and the stage_songs task."""
    from airflow.providers.amazon.aws.transfers.s3_to_redshift import S3ToRedshiftOperator
    from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
    from airflow.sdk import TaskGroup

    lake = Lake(settings.lake)
    bucket, prefix = lake.bucket_and_prefix()
    key_prefix = f"{prefix}/" if prefix else ""
    params = {"raw_schema": settings.raw_schema, "lake": settings.lake.rstrip("/")}
    connections = {"redshift_conn_id": settings.redshift_conn_id, "aws_conn_id": settings.aws_conn_id}

    with TaskGroup(group_id="stage_events") as stage_events:
        prepare = SQLExecuteQueryOperator(
            task_id="prepare",
            conn_id=settings.redshift_conn_id,
            sql=read_sql("create_staging_tables.sql"),
            params=params,
            split_statements=True,
        )
        copy = S3ToRedshiftOperator(
            task_id="copy",
            schema=settings.raw_schema,
            table="staging_events_{{ ds_nodash }}",
            s3_bucket=bucket,
            s3_key=key_prefix + LOG_KEY_TEMPLATE,
            column_list=[column.name for column in schema.EVENTS.columns],
            copy_options=copy_options(settings, jsonpaths_uri(settings)),
            method="APPEND",
            **connections,
        )
        publish = SQLExecuteQueryOperator(
            task_id="publish",
            conn_id=settings.redshift_conn_id,
            # The day's key is itself a template: rendered with the rest of the statement.
            sql=read_sql("publish_events_day.sql").replace("{{ log_key }}", LOG_KEY_TEMPLATE),
            params=params,
            split_statements=True,
        )
        prepare >> copy >> publish

    stage_songs = S3ToRedshiftOperator(
        task_id="stage_songs",
        schema=settings.raw_schema,
        table=schema.SONGS.name,
        s3_bucket=bucket,
        s3_key=f"{key_prefix}song_data",
        column_list=[column.name for column in schema.SONGS.columns],
        copy_options=copy_options(settings, "auto ignorecase"),
        method="REPLACE",
        **connections,
    )
    prepare >> stage_songs
    return [stage_events, stage_songs]
