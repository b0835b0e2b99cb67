"""`make sql` can read the warehouse and do nothing else, on DuckDB and PostgreSQL: each attack is refused with a
clear error and leaves the warehouse as it was. (Redshift: tests/redshift/test_redshift_flow.py.)"""

from __future__ import annotations

import hashlib
from datetime import date

import duckdb
import pytest

from sparkify import cli
from sparkify.cli import project_commands
from sparkify.warehouses import warehouse_for

DAY = date(2018, 11, 1)
COUNT = "select count(*) as events from landing.staging_events"


@pytest.fixture
def staged(small_lake, make_settings, monkeypatch):
    settings = make_settings(small_lake.root)
    warehouse_for(settings).stage_events(DAY)
    monkeypatch.setattr(project_commands, "settings", lambda: settings)
    return settings


def sql(query: str, capsys) -> tuple[int, str, str]:
    code = cli.main(["sql", query])
    out, err = capsys.readouterr()
    return code, out, err


def events(settings) -> int:
    with warehouse_for(settings).cursor() as cur:
        cur.execute("select count(*) from landing.staging_events")
        return cur.fetchone()[0]


@pytest.mark.parametrize("query", [COUNT, f"{COUNT};\n", f"{COUNT} -- how many"])
def test_a_query_prints_its_rows(staged, capsys, query):
    # A final semicolon and a final comment are part of writing one query.
    code, out, _ = sql(query, capsys)
    assert code == 0
    assert out.splitlines()[2].strip() == str(events(staged))


@pytest.mark.parametrize(
    "attack",
    [
        "select 1; delete from landing.staging_events",
        "delete from landing.staging_events",
        "with gone as (delete from landing.staging_events returning 1) select count(*) from gone",
        "drop table landing.staging_events",
        "truncate landing.staging_events",
    ],
)
def test_no_statement_but_one_query_runs(staged, capsys, attack):
    before = events(staged)
    code, out, err = sql(attack, capsys)
    assert (code, out) == (2, "")
    assert err.startswith("error: make sql runs one query (SELECT, WITH ... SELECT, VALUES)")
    assert events(staged) == before


@pytest.mark.parametrize("warehouse_name", ["duckdb"])
def test_duckdb_cannot_write_attach_or_read_files(staged, capsys, tmp_path):
    path = staged.duckdb_path
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    other = tmp_path / "other.duckdb"
    attacks = [
        f"copy (select 1) to '{path}'",
        f"select * from (select 1) as a; copy (select 1) to '{path}'",
        f"attach '{other}' as other",
        "select * from read_text('/etc/hostname')",
        f"select * from read_csv('{path}')",
        "set enable_external_access = true",
        "select current_setting('enable_external_access') as a; set lock_configuration = false",
    ]
    for attack in attacks:
        code, out, err = sql(attack, capsys)
        assert (code, out) == (2, ""), attack
        assert "error: make sql runs one query" in err, attack
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert not other.exists()
    with duckdb.connect(str(path)) as con:  # still a database, opened read-write
        assert con.execute("select count(*) from landing.staging_events").fetchone()[0] > 0


@pytest.mark.parametrize("warehouse_name", ["postgres"])
def test_postgres_reads_as_a_login_that_can_only_read(staged, capsys, tmp_path):
    marker = tmp_path / "pwned"
    attacks = [
        "select 1; set default_transaction_read_only = off; delete from landing.staging_events",
        f"copy (select 1) to program 'touch {marker}'",
        "select pg_read_file('/etc/hostname')",
        "select set_config('role', 'postgres', false)",
        "select set_config('default_transaction_read_only', 'off', false), "
        "(select count(*) from landing.staging_events)",
    ]
    before = events(staged)
    for attack in attacks:
        code, out, err = sql(attack, capsys)
        if code == 0:  # a setting changed for this one read-only, reading session: still nothing written
            assert attack.startswith("select set_config('default_transaction_read_only'"), attack
        else:
            assert (code, out) == (2, ""), attack
            assert "error: make sql runs one query" in err, attack
    assert not marker.exists()
    assert events(staged) == before
    code, out, _ = sql(
        "select current_user as login, rolsuper from pg_roles where rolname = current_user", capsys
    )
    assert code == 0
    assert out.splitlines()[2].split() == [staged.postgres.reader, "False"]


@pytest.mark.parametrize("warehouse_name", ["postgres"])
def test_without_the_right_to_create_the_reader_nothing_runs(small_lake, make_settings, capsys, monkeypatch):
    """make sql never falls back to the warehouse's own login, which can write."""
    import psycopg2
    from psycopg2 import sql as pgsql

    settings = make_settings(small_lake.root)
    owner = f"{settings.postgres.database}_owner"
    admin = psycopg2.connect(
        host=settings.postgres.host,
        port=settings.postgres.port,
        user=settings.postgres.user,
        dbname="postgres",
    )
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(pgsql.SQL("create role {} login nocreaterole").format(pgsql.Identifier(owner)))
        limited = make_settings(small_lake.root, SPARKIFY_PG_USER=owner)
        monkeypatch.setattr(project_commands, "settings", lambda: limited)
        code, out, err = sql("select 1 as one", capsys)
        assert (code, out) == (2, "")
        assert (
            f"error: the read-only login {limited.postgres.reader} could not be created or granted by {owner}"
            in err
        )
        assert "CREATEROLE" in err
    finally:
        with admin.cursor() as cur:
            cur.execute(pgsql.SQL("drop role if exists {}").format(pgsql.Identifier(owner)))
        admin.close()
