"""The Redshift flow for a few generated days, captured and executed once per session (see flow.py, shim.py)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from sparkify import settings as settings_module
from sparkify.datagen import generate
from sparkify.settings import Settings, from_env
from sparkify.staging import postgres, redshift
from tests.conftest import drop_database, s3_client, s3_connection_env, upload_lake
from tests.redshift.flow import Day, redshift_env, run_day
from tests.redshift.shim import RedshiftOnPostgres

# A first run of one day (on an empty warehouse), then a run of three days (incremental).
RUNS = (("2018-11-01",), ("2018-11-02", "2018-11-03", "2018-11-04"))
DAYS = tuple(day for run in RUNS for day in run)


@dataclass
class RedshiftRun:
    """Runs in order on one warehouse (the first on an empty one, the others incremental): what each sent, the
    stand-in that ran it, and where."""

    days: list[Day]
    shim: RedshiftOnPostgres
    settings: Settings
    lake: Path
    database: str

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        """A plain PostgreSQL cursor on the warehouse, past the stand-in (nothing recorded)."""
        con = psycopg2.connect(**pg_dsn(self.database))
        try:
            con.autocommit = True
            with con.cursor() as cur:
                yield cur
        finally:
            con.close()


def pg_dsn(database: str) -> dict[str, object]:
    pg = from_env(os.environ).postgres
    return {"host": pg.host, "port": pg.port, "user": pg.user, "password": pg.password, "dbname": database}


def start_redshift(
    monkeypatch: pytest.MonkeyPatch, s3_server: str, lake: Path, tmp: Path, database: str, **env: str
) -> tuple[RedshiftOnPostgres, Settings]:
    """A new stand-in cluster on ``database`` with ``lake`` in a new bucket; every redshift_connector
    connection of this process goes to it, and the environment is a Redshift deployment's."""
    import redshift_connector

    for key, value in s3_connection_env(s3_server).items():
        monkeypatch.setenv(key, value)
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    uri = upload_lake(s3_server, lake, bucket, "sparkify")
    s3 = s3_client(s3_server)
    s3.upload_file(str(redshift.JSONPATHS_FILE), bucket, f"sparkify/{redshift.JSONPATHS_KEY}")
    postgres.ensure_database(
        from_env({**os.environ, "SPARKIFY_WAREHOUSE": "postgres", "SPARKIFY_PG_DATABASE": database})
    )
    shim = RedshiftOnPostgres(pg_dsn(database), s3)
    monkeypatch.setattr(redshift_connector, "connect", shim.connect)
    for key, value in {**redshift_env(uri, database, tmp), **env}.items():
        monkeypatch.setenv(key, value)
    settings_module.settings.cache_clear()
    return shim, settings_module.settings()


def redshift_run_on(
    s3_server: str,
    tmp_path_factory: pytest.TempPathFactory,
    runs: tuple[tuple[str, ...], ...],
    lake: Path | None = None,
    **env: str,
) -> Iterator[RedshiftRun]:
    """The runs (each a tuple of days) in order on a new stand-in (a generated lake unless ``lake``); the
    environment stays a Redshift deployment's until the generator is closed."""
    tmp = tmp_path_factory.mktemp("redshift")
    lake = lake or generate(tmp / "lake", scale=1, seed=23, days=sum(map(len, runs))).root
    database = f"sparkify_redshift_{uuid.uuid4().hex[:10]}"
    with pytest.MonkeyPatch.context() as monkeypatch:
        try:
            shim, settings = start_redshift(monkeypatch, s3_server, lake, tmp, database, **env)
            ran = [run_day(shim, settings, days, monkeypatch) for days in runs]
            yield RedshiftRun(ran, shim, settings, lake, database)
        finally:
            settings_module.settings.cache_clear()
    drop_database(database)
