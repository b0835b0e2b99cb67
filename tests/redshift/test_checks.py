"""The checks themselves catch what they are for: statements the Redshift path sent before they were fixed."""

from __future__ import annotations

import pytest

from tests.redshift import checks


@pytest.mark.parametrize(
    ("check", "sql", "found"),
    [
        (checks.sqlfluff_problems, "create schema if not exists raw;", "cannot parse"),
        (
            checks.reserved_word_problems,
            "create schema if not exists raw;",
            "'raw' is a Redshift reserved word",
        ),
        (
            checks.reserved_word_problems,
            "select 1 as tag from landing.t",
            "'tag' is a Redshift reserved word",
        ),
        (
            checks.function_problems,
            "insert into raw.pipeline_audit values ('run', current_timestamp)",
            "current_timestamp() runs on Redshift's leader node only, but the statement touches raw.pipeline_audit",
        ),
        (
            checks.function_problems,
            "select substr(title, 1, 3) from landing.t",
            "substr() runs on Redshift's leader",
        ),
        (
            checks.function_problems,
            "select epoch_ms(ts) from landing.t",
            "epoch_ms() is not a Redshift function",
        ),
        (
            checks.type_problems,
            "select lower(cast(song_title as text)) from landing.t",
            "TEXT without a length in a cast",
        ),
        (
            checks.type_problems,
            "create table t (title varchar)",
            "VARCHAR without a length in a column definition",
        ),
        (checks.sqlglot_problems, "select from where", "sqlglot (redshift) rejects it"),
        # A statement of sqlglot's documented gaps is still checked by sqlfluff.
        (checks.grammar_problems, "create user sparkify_reader passwd 'x' readonly", "sqlfluff (redshift)"),
        (checks.grammar_problems, "grant select on all tables in schema to", "sqlfluff (redshift)"),
    ],
)
def test_a_known_fault_is_found(check, sql, found):
    assert any(found in problem for problem in check(sql)), check(sql)


@pytest.mark.parametrize(
    "sql",
    [
        'create schema if not exists "raw"',
        "select count(*), getdate() from landing.staging_events",
        "select has_table_privilege(current_user, 'svv_table_info', 'SELECT')",
        "select c.oid from pg_class as c",
        "select cast(title as varchar(65535)), cast('x' as varchar) from landing.t",
        "create table t (title varchar(65535))",
        "select * from pg_get_late_binding_view_cols() cols(view_schema name, col_type varchar)",
        "create user sparkify_reader password 'md5d8578edf8458ce06fbc5bb76a58c5ca4'",
        "create user sparkify_reader password disable",
        "grant usage on schema analytics to sparkify_reader",
        "grant select on all tables in schema analytics to sparkify_reader",
        "alter default privileges in schema analytics grant select on tables to sparkify_reader",
        "select * from (\nselect level from analytics.fct_songplays\n) as sparkify_sql",
    ],
)
def test_a_statement_redshift_runs_passes(sql):
    problems = [
        *checks.grammar_problems(sql),
        *checks.reserved_word_problems(sql),
        *checks.function_problems(sql),
        *checks.type_problems(sql),
    ]
    assert problems == []
