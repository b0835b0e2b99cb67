"""The Redshift path, proven offline: every statement two runs of sparkify_daily send (one day, then a run of
three days) (staging, dbt-redshift's
build with unit and data tests, source freshness, the summary, the docs, ``make sql``) is captured from the
project's real code, checked against two Redshift grammars and Redshift's documented lists, and executed in
order on a real PostgreSQL server (``shim``); the marts it builds are DuckDB's, to the row."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator

import pytest

from sparkify import summary
from tests.conftest import MARTS, build_day_by_day, fingerprints
from tests.redshift import checks
from tests.redshift.conftest import DAYS, RUNS, RedshiftRun, redshift_run_on
from tests.redshift.flow import STAGING_TASKS

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def run(postgres_server, s3_server, tmp_path_factory) -> Iterator[RedshiftRun]:
    yield from redshift_run_on(s3_server, tmp_path_factory, RUNS)


def unique_statements(run: RedshiftRun) -> dict[str, str]:
    """Each distinct statement (dbt's per-run comment and temporary names aside), with the step that sent it."""
    statements = {}
    for day in run.days:
        for statement in day.statements:
            sql = re.sub(
                r"__dbt_tmp\d+", "__dbt_tmp", re.sub(r'^/\* \{"app": "dbt".*?\*/', "", statement.sql)
            )
            statements.setdefault(sql, f"{day.day} {statement.origin}")
    return statements


def report(run: RedshiftRun, check: Callable[[str], list[str]]) -> list[str]:
    return [
        f"[{origin}] {problem}\n    {sql.strip()[:300]}"
        for sql, origin in unique_statements(run).items()
        for problem in check(sql)
    ]


def test_the_capture_covers_every_step_of_a_run(run):
    first, later = run.days[0], run.days[-1]
    for day, days in zip(run.days, RUNS, strict=True):
        origins = {statement.origin for statement in day.statements}
        assert {*STAGING_TASKS, "dbt source freshness", "dbt build", "summary", "docs", "make sql"} <= origins
        sent = "\n".join(statement.sql for statement in day.statements)
        # A COPY per day of the run, and the song files'.
        assert sent.count("COPY ") == len(days) + 1 and "FORMAT AS JSON" in sent
        for one in days:
            assert f"/log_data/{one[:4]}/{one[5:7]}/{one}-events.json" in sent
        assert '"node_id": "unit_test.sparkify.' in sent, "dbt's unit tests were not run"
        assert '"node_id": "test.sparkify.' in sent, "dbt's data tests were not run"
    first_sql = "\n".join(statement.sql for statement in first.statements)
    later_sql = "\n".join(statement.sql for statement in later.statements)
    # The first day creates the fact table; the later run takes the incremental path (delete+insert of its days).
    assert re.search(r'create\s+table\s+"[^"]+"\."analytics"\."fct_songplays"', first_sql)
    assert re.search(r'delete from "[^"]+"\."analytics"\."fct_songplays"\s+where', later_sql)
    assert not re.search(r'create\s+table\s+"[^"]+"\."analytics"\."fct_songplays"\s', later_sql)
    assert "between cast('2018-11-02' as date) and cast('2018-11-04' as date)" in later_sql
    assert later.results["summary"]["day.songplays"] == later.results["summary"]["day.staged_nextsong"] > 0
    assert later.results["summary"]["days"] == 3
    assert "level" in later.results["make sql"] and "paid" in later.results["make sql"]


def test_every_statement_parses_under_two_redshift_grammars(run):
    statements = unique_statements(run)
    problems = checks.all_grammar_problems(list(statements))
    found = [
        f"[{statements[sql]}] {problem}\n    {sql.strip()[:300]}"
        for sql, found in problems.items()
        for problem in found
    ]
    assert not found, "\n".join(found)
    assert len(statements) > 150


def test_no_identifier_is_a_redshift_reserved_word(run):
    assert not (found := report(run, checks.reserved_word_problems)), "\n".join(found)


def test_every_function_runs_where_its_statement_runs(run):
    assert not (found := report(run, checks.function_problems)), "\n".join(found)


def test_no_text_is_silently_cut_to_varchar_256(run):
    assert not (found := report(run, checks.type_problems)), "\n".join(found)


def test_the_marts_are_created_with_their_declared_types(run):
    with run.cursor() as cur:
        cur.execute(
            "select table_name, column_name, data_type, character_maximum_length from information_schema.columns "
            "where table_schema = 'analytics' and table_name in ('fct_songplays', 'dim_songs') "
            "and column_name in ('songplay_id', 'user_agent', 'title', 'duration', 'session_id')"
        )
        columns = {
            (table, column): (data_type, length) for table, column, data_type, length in cur.fetchall()
        }
    assert columns == {
        ("fct_songplays", "songplay_id"): ("character varying", 65535),
        ("fct_songplays", "user_agent"): ("character varying", 65535),
        ("fct_songplays", "session_id"): ("bigint", None),
        ("dim_songs", "title"): ("character varying", 65535),
        ("dim_songs", "duration"): ("double precision", None),
    }


@pytest.fixture(scope="module")
def on_duckdb(run, tmp_path_factory):
    """The same lake through the DuckDB pipeline, day by day as the DAG runs them."""
    root = tmp_path_factory.mktemp("duckdb-reference")
    env = {
        **os.environ,
        "SPARKIFY_WAREHOUSE": "duckdb",
        "SPARKIFY_LAKE": str(run.lake),
        "SPARKIFY_DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "DBT_LOG_PATH": str(root / "logs"),
    }
    settings = build_day_by_day(env, DAYS, root / "target")
    return fingerprints(settings, MARTS)


def test_the_redshift_flow_builds_the_marts_duckdb_builds(run, on_duckdb):
    assert all(rows > 0 for rows, _ in on_duckdb.values())
    assert fingerprints(run.settings, MARTS) == on_duckdb


def test_each_run_records_its_audit_and_a_clean_quarantine(run):
    with run.cursor() as cur:
        cur.execute(
            "select count(distinct run_id), count(distinct log_date), count(*) from landing.pipeline_audit"
        )
        assert cur.fetchone() == (len(RUNS), len(DAYS), len(DAYS) * (2 + len(summary.MARTS)))
        cur.execute("select count(*) from landing.staging_quarantine")
        assert cur.fetchone() == (0,)
        cur.execute(
            "select count(*) from information_schema.tables where table_name like 'staging_%\\_2018%'"
        )
        assert cur.fetchone() == (0,), "a day's load table was left behind"


def test_make_sql_reads_as_a_login_that_can_only_read(run, capsys):
    from sparkify import cli
    from tests.conftest import reader_of

    def songplays() -> int:
        with run.cursor() as cur:
            cur.execute("select count(*) from analytics.fct_songplays")
            return cur.fetchone()[0]

    before = songplays()
    capsys.readouterr()
    for attack in (
        "select 1; delete from analytics.fct_songplays",
        "delete from analytics.fct_songplays",
        "with gone as (delete from analytics.fct_songplays returning 1) select count(*) from gone",
        "select count(*) from analytics.fct_songplays; drop table analytics.fct_songplays",
    ):
        assert cli.main(["sql", attack]) == 2, attack
        assert "error: make sql runs one query" in capsys.readouterr().err, attack
    assert songplays() == before
    assert cli.main(["sql", "select current_user as login"]) == 0
    assert capsys.readouterr().out.splitlines()[2].strip() == reader_of(run.database)
    # The reader's password reached the stand-in only as its md5 hash.
    sent = "\n".join(statement.sql for day in run.days for statement in day.statements)
    assert f"create user {reader_of(run.database)} password 'md5" in sent and "stand-in-reader" not in sent


def test_a_scheduled_run_waits_for_its_days_logs_in_the_s3_lake(run):
    """The Redshift deployment's wait (``wait_for_logs``) asks the S3 lake for each of the run's days' keys."""
    from datetime import date
    from types import SimpleNamespace

    import pendulum

    from tests.redshift.flow import parse_dag

    wait = parse_dag().get_task("wait_for_logs")

    def context(first: str, last: str, run_type: str = "scheduled") -> dict:
        return {
            "dag_run": SimpleNamespace(run_type=run_type),
            "data_interval_start": pendulum.parse(first),
            "data_interval_end": pendulum.parse(last).add(days=1),
        }

    assert run.settings.lake.startswith("s3://")
    assert wait.poke(context(DAYS[0], DAYS[-1]))
    assert not wait.poke(context(DAYS[-1], "2018-11-06"))
    assert wait.missing == [date(2018, 11, 5), date(2018, 11, 6)]
    # A backfill does not wait: its staging fails at once on a missing key.
    assert wait.poke(context("2018-11-05", "2018-11-05", run_type="backfill"))
