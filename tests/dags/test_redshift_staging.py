"""sparkify_daily on Redshift, without AWS: the COPY each staging task runs for a day, rendered and asserted."""

from __future__ import annotations

import json
import re

import pendulum
import pytest

from sparkify import settings as settings_module
from sparkify.staging import redshift, schema
from tests.conftest import REPO

LAKE = "s3://sparkify-lake/raw"
DAY = "2018-11-05"


@pytest.fixture
def dag(monkeypatch, tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("SPARKIFY_HOME", str(REPO))
    monkeypatch.setenv("SPARKIFY_WAREHOUSE", "redshift")
    monkeypatch.setenv("SPARKIFY_LAKE", LAKE)
    monkeypatch.setenv("SPARKIFY_REDSHIFT_REGION", "us-west-2")
    settings_module.settings.cache_clear()
    dagbag = DagBag(dag_folder=str(REPO / "airflow" / "dags"))
    settings_module.settings.cache_clear()
    assert dagbag.import_errors == {}
    return dagbag.dags["sparkify_daily"]


def context() -> dict[str, object]:
    logical_date = pendulum.parse(DAY)
    return {"ds": DAY, "ds_nodash": DAY.replace("-", ""), "logical_date": logical_date, "params": {}}


def rendered_copy(task) -> str:
    """The COPY statement the operator builds, with the fields Airflow renders for the run's day."""
    ctx = context()
    table = task.render_template(task.table, ctx)
    key = task.render_template(task.s3_key, ctx)
    task.s3_key = key
    options = "\n".join(task.render_template(task.copy_options, ctx))
    return " ".join(
        task._build_copy_query(
            f"{task.schema}.{table}", "aws_iam_role=arn:aws:iam::123456789012:role/sparkify-copy", "", options
        ).split()
    )


def test_staging_tasks_on_redshift(dag):
    assert {"stage_events.prepare", "stage_events.copy", "stage_events.publish", "stage_songs"} <= set(
        dag.task_ids
    )
    assert "stage_events" not in dag.task_ids
    assert dag.get_task("stage_events.copy").upstream_task_ids == {"stage_events.prepare"}
    assert dag.get_task("stage_events.publish").upstream_task_ids == {"stage_events.copy"}
    for task_id in ("stage_events.publish", "stage_songs"):
        assert dag.get_task(task_id).downstream_task_ids == {
            "dbt_sparkify.sparkify_staging_events_source",
            "dbt_sparkify.sparkify_staging_songs_source",
            "dbt_sparkify.dbt_producer_watcher",
        }
    assert "redshift" in dag.tags
    for task in dag.tasks:
        assert task.pool == "default_pool", task.task_id


def test_events_copy_for_a_day(dag):
    task = dag.get_task("stage_events.copy")
    assert type(task).__name__ == "S3ToRedshiftOperator"
    assert task.method == "APPEND"
    assert (task.redshift_conn_id, task.aws_conn_id) == ("redshift_default", "aws_default")
    sql = rendered_copy(task)
    columns = ", ".join(column.name for column in schema.EVENTS.columns)
    assert sql.startswith(f"COPY raw.staging_events_20181105 ({columns}) ")
    assert "FROM 's3://sparkify-lake/raw/log_data/2018/11/2018-11-05-events.json'" in sql
    assert "credentials 'aws_iam_role=arn:aws:iam::123456789012:role/sparkify-copy'" in sql
    assert "FORMAT AS JSON 's3://sparkify-lake/raw/jsonpaths/events_jsonpaths.json'" in sql
    assert "REGION 'us-west-2'" in sql
    assert sql.endswith(";")


def test_songs_copy(dag):
    task = dag.get_task("stage_songs")
    assert task.method == "REPLACE"
    sql = rendered_copy(task)
    assert sql.startswith("COPY raw.staging_songs (num_songs, artist_id, ")
    assert "FROM 's3://sparkify-lake/raw/song_data'" in sql
    assert "FORMAT AS JSON 'auto ignorecase'" in sql


def test_the_day_is_replaced_in_one_transaction(dag):
    prepare = dag.get_task("stage_events.prepare")
    publish = dag.get_task("stage_events.publish")
    ctx = {**context(), "params": prepare.params}
    created = " ".join(prepare.render_template(prepare.sql, ctx).split())
    assert "create table if not exists raw.staging_events (" in created
    assert "distkey (sessionid) sortkey (log_date, ts)" in created
    assert "diststyle all sortkey (song_id)" in created
    assert "create table raw.staging_events_20181105 (like raw.staging_events)" in created
    published = " ".join(publish.render_template(publish.sql, {**ctx, "params": publish.params}).split())
    begin, delete, insert, commit = (
        published.index("begin;"),
        published.index("delete from raw.staging_events where log_date = '2018-11-05';"),
        published.index("insert into raw.staging_events select"),
        published.index("commit;"),
    )
    assert begin < delete < insert < commit < published.index("drop table raw.staging_events_20181105;")
    assert "'s3://sparkify-lake/raw/log_data/2018/11/2018-11-05-events.json' as source_file" in published
    assert "{{" not in published


def test_the_shipped_jsonpaths_follow_the_raw_schema():
    paths = json.loads(redshift.JSONPATHS_FILE.read_text())["jsonpaths"]
    assert paths == [f"$['{column.json_key}']" for column in schema.EVENTS.columns]
    ddl = redshift.read_sql("create_staging_tables.sql")
    events_ddl = ddl[ddl.index("staging_events (") : ddl.index(")\ndistkey")]
    assert re.findall(r"^    (\w+) ", events_ddl, re.M) == [
        column.name for column in schema.EVENTS.all_columns
    ]


def test_a_local_lake_is_refused_on_redshift(tmp_path):
    settings = settings_module.from_env({"SPARKIFY_WAREHOUSE": "redshift", "SPARKIFY_LAKE": str(tmp_path)})
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        redshift.staging_tasks(settings)
