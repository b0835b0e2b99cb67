"""A cursor on the configured warehouse, for the summary, queries and tests (DB-API: execute, fetch*), and the
read-only query behind ``make sql``.

``make sql`` runs one query and nothing else, on every warehouse:

- the query is run as ``select * from (<query>) as sparkify_sql``: each database parses the whole text before
  running any of it, so a second statement, a statement that is not a query (COPY, ATTACH, SET, DDL, DML) or a
  data-modifying WITH fails to parse and nothing runs;
- DuckDB: the file is opened read-only, with external access disabled (no file read or written, no ATTACH, no
  extension) and the configuration locked, so no statement can turn either back on;
- PostgreSQL and Redshift: the query runs as a login that may only read the warehouse's schemas (``READER``,
  created on first use by the warehouse's own login, as the database is), in a read-only transaction on
  PostgreSQL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

from sparkify.settings import Settings, validate_identifier

# The schemas dbt builds, besides the landing schema: what a reader may read.
DBT_SCHEMAS = ("analytics", "analytics_staging")


class QueryError(ValueError):
    """`make sql` was given something other than one query."""


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


def one_query(sql: str) -> str:
    """``sql`` as the only query of a statement (see the module's doc); a comment may end it."""
    body = sql.strip()
    while body.endswith(";"):
        body = body[:-1].rstrip()
    if not body:
        raise QueryError('no query given: make sql Q="select ..."')
    return f"select * from (\n{body}\n) as sparkify_sql"


def read_schemas(settings: Settings) -> tuple[str, ...]:
    return (settings.raw_schema, *DBT_SCHEMAS)


def reader_password_sql(warehouse: str, login: str, password: str) -> str:
    """A password clause that never holds the password itself: on PostgreSQL its SCRAM-SHA-256 verifier, on
    Redshift its md5 hash (``md5`` + md5 of password and login), each as the database stores it."""
    if warehouse == "redshift":
        digest = hashlib.md5((password + login).encode(), usedforsecurity=False).hexdigest()
        return f"password 'md5{digest}'"
    import base64
    import hmac
    import secrets

    salt, iterations = secrets.token_bytes(16), 4096
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server = hmac.digest(salted, b"Server Key", "sha256")
    encoded = [base64.b64encode(value).decode() for value in (salt, stored, server)]
    return f"password 'SCRAM-SHA-256${iterations}:{encoded[0]}${encoded[1]}:{encoded[2]}'"


def ensure_reader(cur: Any, settings: Settings, login: str, password: str) -> None:
    """Create the ``login`` that may only read the warehouse's schemas if it does not exist, and grant it what
    it may read (again each time: schemas and tables created since are covered). ``cur``: the warehouse's own
    login, in autocommit."""
    validate_identifier(login, "the reader's login")
    cur.execute("select count(*) from pg_user where usename = %s", (login,))
    if cur.fetchone()[0] == 0:
        if password:
            clause = reader_password_sql(settings.warehouse, login, password)
        else:  # PostgreSQL: the server's own authentication (trust, peer); Redshift: IAM only
            clause = "password disable" if settings.warehouse == "redshift" else ""
        cur.execute(f"create user {login} {clause}".strip())
    schemas = read_schemas(settings)
    cur.execute(
        "select nspname from pg_namespace where nspname in (" + ", ".join(["%s"] * len(schemas)) + ")",
        schemas,
    )
    for (schema,) in cur.fetchall():
        validate_identifier(schema, "a schema")
        cur.execute(f"grant usage on schema {schema} to {login}")
        cur.execute(f"grant select on all tables in schema {schema} to {login}")
        cur.execute(f"alter default privileges in schema {schema} grant select on tables to {login}")


def _rows(cur: Any, sql: str) -> tuple[list[str], list[tuple[object, ...]]]:
    cur.execute(one_query(sql))
    return [column[0] for column in cur.description], [tuple(row) for row in cur.fetchall()]


def _refused(error: Exception) -> QueryError:
    return QueryError(
        "make sql runs one query (SELECT, WITH ... SELECT, VALUES) that reads the warehouse: "
        + str(error).strip().splitlines()[0]
    )


def _no_reader(reader: str, admin: str, error: Exception) -> QueryError:
    """The reader login could not be created or granted: make sql never falls back to a login that can write."""
    return QueryError(
        f"the read-only login {reader} could not be created or granted by {admin} "
        f"({str(error).strip().splitlines()[0]}); create it once with SELECT on the warehouse's schemas, "
        "or give that login the right to create logins (CREATEROLE)"
    )


def read_only_query(settings: Settings, sql: str) -> tuple[list[str], list[tuple[object, ...]]]:
    """Run one query that can change nothing (see the module's doc): column names and rows."""
    if settings.warehouse == "duckdb":
        import duckdb

        config = {"enable_external_access": False, "lock_configuration": True}
        try:
            with closing(duckdb.connect(str(settings.duckdb_path), read_only=True, config=config)) as con:
                return _rows(con, sql)
        except duckdb.Error as error:
            raise _refused(error) from error
    if settings.warehouse == "postgres":
        import psycopg2

        pg = settings.postgres
        try:
            with cursor(settings, read_only=False) as admin:
                ensure_reader(admin, settings, pg.reader, pg.reader_password)
        except psycopg2.Error as error:
            raise _no_reader(pg.reader, pg.user, error) from error
        con = psycopg2.connect(
            host=pg.host, port=pg.port, user=pg.reader, password=pg.reader_password, dbname=pg.database
        )
        try:
            con.set_session(readonly=True)
            with con.cursor() as cur:
                return _rows(cur, sql)
        except psycopg2.Error as error:
            raise _refused(error) from error
        finally:
            con.close()
    import redshift_connector
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook
    from airflow.sdk import BaseHook

    reader = BaseHook.get_connection(settings.redshift_reader_conn_id)
    try:
        with cursor(settings, read_only=False) as admin:
            ensure_reader(admin, settings, reader.login, reader.password or "")
    except redshift_connector.Error as error:
        raise _no_reader(
            reader.login, f"the {settings.redshift_conn_id} connection's login", error
        ) from error
    with closing(RedshiftSQLHook(redshift_conn_id=settings.redshift_reader_conn_id).get_conn()) as con:
        con.autocommit = True
        try:
            with closing(con.cursor()) as cur:
                return _rows(cur, sql)
        except redshift_connector.Error as error:
            raise _refused(error) from error
