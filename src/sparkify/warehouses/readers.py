"""The read-only login of `make sql` on the warehouses that have logins (PostgreSQL, Redshift)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING, Any

from sparkify.settings import validate_identifier
from sparkify.warehouses import DBT_SCHEMAS, QueryError

if TYPE_CHECKING:
    from sparkify.settings import Settings


def scram_password(password: str) -> str:
    """PostgreSQL's password clause holding the SCRAM-SHA-256 verifier of ``password`` (as the server stores
    it), computed here so that the password itself never appears in SQL."""
    salt, iterations = secrets.token_bytes(16), 4096
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server = hmac.digest(salted, b"Server Key", "sha256")
    encoded = [base64.b64encode(value).decode() for value in (salt, stored, server)]
    return f"password 'SCRAM-SHA-256${iterations}:{encoded[0]}${encoded[1]}:{encoded[2]}'"


def md5_password(login: str, password: str) -> str:
    """Redshift's password clause holding the md5 hash of ``password`` (``md5`` + md5 of password and login)."""
    digest = hashlib.md5((password + login).encode(), usedforsecurity=False).hexdigest()
    return f"password 'md5{digest}'"


def read_schemas(settings: Settings) -> tuple[str, ...]:
    return (settings.raw_schema, *DBT_SCHEMAS)


def ensure_reader(cur: Any, settings: Settings, login: str, password_clause: str) -> None:
    """Create the ``login`` that may only read the warehouse's schemas if it does not exist (with
    ``password_clause``), and grant it what it may read (again each time: schemas and tables created since are
    covered). ``cur``: the warehouse's own login, in autocommit."""
    validate_identifier(login, "the reader's login")
    cur.execute("select count(*) from pg_user where usename = %s", (login,))
    if cur.fetchone()[0] == 0:
        cur.execute(f"create user {login} {password_clause}".strip())
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


def no_reader(reader: str, admin: str, error: Exception) -> QueryError:
    """The reader login could not be created or granted: make sql never falls back to a login that can write."""
    return QueryError(
        f"the read-only login {reader} could not be created or granted by {admin} "
        f"({str(error).strip().splitlines()[0]}); create it once with SELECT on the warehouse's schemas, "
        "or give that login the right to create logins (CREATEROLE)"
    )
