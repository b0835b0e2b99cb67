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


def day_stage(dag, day: str = DAY):
    """The run's ``stage_events`` instance for ``day``, as a worker creates it from the mapped task."""
    return dag.get_task("stage_events").unmap({"days": [day]})


def test_staging_tasks_on_redshift(dag):
    assert {"prepare", "stage_events", "stage_songs.copy", "stage_songs.publish"} <= set(dag.task_ids)
    assert dag.get_task("stage_events").upstream_task_ids == {"prepare", "days", "wait_for_logs"}
    assert dag.get_task("stage_events").map_index_template == "{{ days_label }}"
    assert dag.get_task("stage_songs.copy").upstream_task_ids == {"prepare", "wait_for_logs"}
    assert dag.get_task("stage_songs.publish").upstream_task_ids == {"stage_songs.copy"}
    for task_id in ("stage_events", "stage_songs.publish"):
        assert dag.get_task(task_id).downstream_task_ids == {
            "dbt_sparkify.sparkify_staging_events_source",
            "dbt_sparkify.sparkify_staging_songs_source",
            "dbt_sparkify.stg_sparkify__quarantine.run",
            "dbt_sparkify.dbt_producer_watcher",
        }
    assert "redshift" in dag.tags
    for task in dag.tasks:
        assert task.pool == "default_pool", task.task_id


def test_events_copy_for_a_day(dag):
    task = day_stage(dag)
    from airflow.providers.amazon.aws.transfers.s3_to_redshift import S3ToRedshiftOperator

    assert isinstance(task, S3ToRedshiftOperator) and type(task).__name__ == "DayLogStage"
    assert task.method == "APPEND"
    assert (task.redshift_conn_id, task.aws_conn_id) == ("redshift_default", "aws_default")
    sql = rendered_copy(task)
    columns = ", ".join(column.name for column in schema.EVENTS.columns)
    assert sql.startswith(f"COPY landing.staging_events_20181105 ({columns}) ")
    assert "FROM 's3://sparkify-lake/raw/log_data/2018/11/2018-11-05-events.json'" in sql
    assert "credentials 'aws_iam_role=arn:aws:iam::123456789012:role/sparkify-copy'" in sql
    assert "FORMAT AS JSON 's3://sparkify-lake/raw/jsonpaths/events_jsonpaths.json'" in sql
    assert "MAXERROR 100000" in sql
    assert "REGION 'us-west-2'" in sql
    # Values land as they are, or are rejected and quarantined: nothing is emptied to null or cut.
    for option in ("TRUNCATECOLUMNS", "BLANKSASNULL", "EMPTYASNULL", "ACCEPTINVCHARS"):
        assert option not in sql
    assert sql.endswith(";")


def test_songs_copy(dag):
    task = dag.get_task("stage_songs.copy")
    assert task.method == "APPEND"
    sql = rendered_copy(task)
    assert sql.startswith("COPY landing.staging_songs_20181105 (num_songs, artist_id, ")
    assert "FROM 's3://sparkify-lake/raw/song_data'" in sql
    assert "FORMAT AS JSON 'auto ignorecase'" in sql


@pytest.mark.parametrize(
    ("count", "ratio", "max_errors"),
    [("0", "0", 0), ("1", "0", 100_000), ("0", "0.01", 100_000), ("10", "1", 100_000)],
)
def test_copy_max_errors_follows_the_allowance(count, ratio, max_errors):
    settings = settings_module.from_env(
        {"SPARKIFY_WAREHOUSE": "redshift", "SPARKIFY_MAX_BAD_RATIO": ratio, "SPARKIFY_MAX_BAD_RECORDS": count}
    )
    assert f"MAXERROR {max_errors}" in redshift.copy_options(settings, "auto")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SPARKIFY_REDSHIFT_REGION", "us-west-2' credentials 'x"),
        ("SPARKIFY_REDSHIFT_REGION", "US-WEST-2"),
        ("SPARKIFY_REDSHIFT_JSONPATHS", "s3://bucket/it's.json"),
        ("SPARKIFY_REDSHIFT_JSONPATHS", "s3://bucket/../paths.json"),
        ("SPARKIFY_REDSHIFT_JSONPATHS", "/local/paths.json"),
    ],
)
def test_values_written_into_the_copy_are_validated(variable, value):
    settings = settings_module.from_env(
        {"SPARKIFY_WAREHOUSE": "redshift", "SPARKIFY_LAKE": "s3://bucket/prefix", variable: value}
    )
    with pytest.raises(ValueError, match=variable):
        redshift.copy_options(settings, redshift.jsonpaths_uri(settings))


def test_each_day_has_its_own_load_table_and_publishes_it():
    values = {
        "raw_schema": "landing",
        "lake": LAKE,
        "day": DAY,
        "day_nodash": "20181105",
        "log_key": "k.json",
    }
    created = " ".join(redshift.render_sql("create_day_load_table.sql", **values).split())
    assert "create table landing.staging_events_20181105 (like landing.staging_events)" in created
    published = " ".join(redshift.render_sql("publish_events_day.sql", **values).split())
    assert "delete from landing.staging_events where log_date = '2018-11-05';" in published
    assert f"'{LAKE}/k.json' as source_file" in published
    assert published.endswith("drop table landing.staging_events_20181105;")


def test_prepare_creates_every_landing_table_and_the_runs_load_table(dag):
    prepare = dag.get_task("prepare")
    ctx = {**context(), "params": prepare.params}
    created = " ".join(prepare.render_template(prepare.sql, ctx).split())
    assert "create schema if not exists landing;" in created
    assert "create table if not exists landing.staging_events (" in created
    assert "distkey (sessionid) sortkey (log_date, ts)" in created
    assert "diststyle all sortkey (song_id)" in created
    assert "create table if not exists landing.staging_quarantine (" in created
    assert "staging_events_20181105" not in created
    assert "create table landing.staging_songs_20181105 (like landing.staging_songs)" in created


def test_the_shipped_jsonpaths_and_ddl_follow_the_landing_schema():
    paths = json.loads(redshift.JSONPATHS_FILE.read_text())["jsonpaths"]
    assert paths == [f"$['{column.json_key}']" for column in schema.EVENTS.columns]
    ddl = redshift.read_sql("create_staging_tables.sql")
    for table in (schema.EVENTS, schema.SONGS, schema.QUARANTINE):
        body = ddl[ddl.index(f"{table.name} (") : ddl.index("\n)", ddl.index(f"{table.name} ("))]
        assert re.findall(r"^    (\w+) ", body, re.M) == [column.name for column in table.all_columns]


def test_a_local_lake_is_refused_on_redshift(tmp_path):
    settings = settings_module.from_env({"SPARKIFY_WAREHOUSE": "redshift", "SPARKIFY_LAKE": str(tmp_path)})
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        redshift.staging_tasks(settings, [[DAY]])
