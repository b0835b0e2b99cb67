"""Shared fixtures: generated lakes and settings that point at temporary warehouses, never at the repo's .local."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql

from sparkify.datagen import GeneratedLake, generate
from sparkify.settings import Settings, from_env
from sparkify.summary import MARTS as MARTS_
from sparkify.warehouses import warehouse_for

REPO = Path(__file__).resolve().parents[1]
PROJECT = REPO / "dbt_sparkify"
BIN = Path(sys.executable).parent

# The modules that take longest, longest first (docs/development.md: Test time). `make test` runs modules side by
# side (pytest-xdist, a module to a worker): starting the long ones first keeps one from being left to run alone
# at the end.
LONGEST_FIRST = (
    "tests/docs/test_documented_commands.py",
    "tests/e2e/test_celery_topology.py",
    "tests/e2e/test_backfill.py",
    "tests/dbt/test_incremental.py",
    "tests/e2e/test_days_per_run.py",
    "tests/e2e/test_shutdown.py",
    "tests/e2e/test_health_view.py",
    "tests/e2e/test_days_per_run_postgres.py",
    "tests/e2e/test_faults.py",
    "tests/e2e/test_arrival.py",
    "tests/e2e/test_stock_executor.py",
    "tests/e2e/test_local_execution.py",
    "tests/redshift/test_redshift_flow.py",
    "tests/dbt/test_dbt_project.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {module: place for place, module in enumerate(LONGEST_FIRST)}
    # A stable sort: within a module, and among the other modules, the order stays pytest's own.
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


def read_events(lake: Path) -> list[dict[str, object]]:
    """Every event of the lake, with the day of its file, read straight from the JSON files."""
    events = []
    for path in sorted((lake / "log_data").glob("*/*/*-events.json")):
        day = path.name.removesuffix("-events.json")
        with path.open(encoding="utf-8") as fh:
            events.extend({**json.loads(line), "_day": day} for line in fh if line.strip())
    return events


def read_songs(lake: Path) -> list[dict[str, object]]:
    return [
        json.loads(path.read_text(encoding="utf-8")) for path in sorted(lake.glob("song_data/*/*/*/*.json"))
    ]


def normalized(text: object) -> str:
    return " ".join(str(text).split()).lower()


def expected_matches(lake: Path, strategy: str, tolerance: float = 1.0) -> dict[tuple[int, int], str]:
    """The song each play should get, computed here independently of the SQL."""
    songs = read_songs(lake)
    matches = {}
    for play in (e for e in read_events(lake) if e["page"] == "NextSong"):
        if strategy == "exact":
            candidates = [
                s
                for s in songs
                if (s["title"], str(s["artist_name"]), s["duration"])
                == (play["song"], play["artist"], play["length"])
            ]
        else:
            candidates = [
                s
                for s in songs
                if normalized(s["title"]) == normalized(play["song"])
                and normalized(s["artist_name"]) == normalized(play["artist"])
                and abs(s["duration"] - play["length"]) <= tolerance
            ]
        if candidates:
            best = min(
                candidates,
                key=lambda s: (
                    abs(s["duration"] - play["length"]),
                    (s["title"], str(s["artist_name"])) != (play["song"], play["artist"]),
                    s["song_id"],
                ),
            )
            matches[(play["sessionId"], play["itemInSession"])] = best["song_id"]
    return matches


@pytest.fixture(scope="session")
def month_lake(tmp_path_factory: pytest.TempPathFactory) -> GeneratedLake:
    """A full November at scale 1, the demo's data set."""
    return generate(tmp_path_factory.mktemp("month") / "lake", scale=1, seed=42)


@pytest.fixture(scope="session")
def small_lake(tmp_path_factory: pytest.TempPathFactory) -> GeneratedLake:
    """Three days at scale 1: enough for staging and DAG runs."""
    return generate(tmp_path_factory.mktemp("small") / "lake", scale=1, seed=7, days=3)


@pytest.fixture(scope="session")
def postgres_server() -> dict[str, str]:
    """The PostgreSQL server of SPARKIFY_PG_* (default 127.0.0.1:5432): skipped with a reason when it is not
    there, except where SPARKIFY_REQUIRE_POSTGRES is set (CI), where that is a failure."""
    pg = from_env(os.environ).postgres
    try:
        psycopg2.connect(
            host=pg.host,
            port=pg.port,
            user=pg.user,
            password=pg.password,
            dbname="postgres",
            connect_timeout=5,
        ).close()
    except psycopg2.OperationalError as error:
        reason = (
            f"PostgreSQL not reachable at {pg.host}:{pg.port} as {pg.user} ({str(error).strip().splitlines()[0]}): "
            "install and start it, or point SPARKIFY_PG_* at a server, to run the PostgreSQL tests (docs/warehouses.md: PostgreSQL warehouse)"
        )
        if os.environ.get("SPARKIFY_REQUIRE_POSTGRES"):
            pytest.fail(reason)
        pytest.skip(reason)
    return {key: value for key, value in os.environ.items() if key.startswith("SPARKIFY_PG_")}


def reader_of(database: str) -> str:
    """The login `make sql` reads a test's database with: its own, so that tests never share one (logins are
    the server's, not a database's), dropped with the database."""
    return f"{database}_reader"


def drop_database(name: str) -> None:
    pg = from_env(os.environ).postgres
    con = psycopg2.connect(host=pg.host, port=pg.port, user=pg.user, password=pg.password, dbname="postgres")
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
            cur.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(reader_of(name))))
    finally:
        con.close()


@pytest.fixture
def pg_database(postgres_server) -> Iterator[str]:
    """A new, empty warehouse database, dropped afterwards."""
    name = f"sparkify_test_{uuid.uuid4().hex[:12]}"
    yield name
    drop_database(name)


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_name(request) -> str:
    return request.param


@pytest.fixture
def make_settings(tmp_path: Path, request, warehouse_name) -> Iterator[object]:
    """Settings for a new, empty warehouse of the test's kind (DuckDB file or PostgreSQL database)."""
    extra_env: dict[str, str] = {}
    if warehouse_name == "postgres":
        database = request.getfixturevalue("pg_database")
        extra_env = {
            "SPARKIFY_WAREHOUSE": "postgres",
            "SPARKIFY_PG_DATABASE": database,
            "SPARKIFY_PG_READER": reader_of(database),
        }

    def _make(lake: Path, **extra: str) -> Settings:
        return new_warehouse(lake, tmp_path / "warehouse.duckdb", {**extra_env, **extra})

    yield _make


def new_warehouse(lake: Path, duckdb_path: Path, extra_env: dict[str, str]) -> Settings:
    """Settings for ``lake`` and a warehouse that exists (the PostgreSQL database created when it is one)."""
    settings = from_env(
        {
            **{k: v for k, v in os.environ.items() if k.startswith("SPARKIFY_PG_")},
            "SPARKIFY_HOME": str(REPO),
            "SPARKIFY_LAKE": str(lake),
            "SPARKIFY_DUCKDB_PATH": str(duckdb_path),
            **extra_env,
        }
    )
    if settings.warehouse == "postgres":
        from sparkify.staging import postgres

        postgres.ensure_database(settings)
    return settings


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3-compatible server (moto) on loopback; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    from sparkify.local_airflow import free_port

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_connection_env(endpoint: str) -> dict[str, str]:
    """The aws_default Airflow connection, as an operator would set it for MinIO or any S3-compatible store."""
    connection = {
        "conn_type": "aws",
        "login": "sparkify-test-key",
        "password": "sparkify-test-secret",
        "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }
    return {"AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection)}


def s3_client(endpoint: str):
    """A boto3 client of the test S3 server, with the credentials of ``s3_connection_env``."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="sparkify-test-key",
        aws_secret_access_key="sparkify-test-secret",
    )


def upload_lake(endpoint: str, lake: Path, bucket: str, prefix: str) -> str:
    """Copy a local lake into a new bucket under ``prefix``; the lake's s3:// URI."""
    client = s3_client(endpoint)
    client.create_bucket(Bucket=bucket)
    for path in sorted(p for p in lake.rglob("*.json")):
        client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(lake).as_posix()}")
    return f"s3://{bucket}/{prefix}"


@pytest.fixture
def s3_lake(s3_server, small_lake, monkeypatch) -> str:
    """The small lake in a bucket of the S3 server, with aws_default pointing at it."""
    for key, value in s3_connection_env(s3_server).items():
        monkeypatch.setenv(key, value)
    return upload_lake(s3_server, small_lake.root, f"lake-{uuid.uuid4().hex[:8]}", "sparkify/raw")


MARTS = tuple(f"analytics.{mart}" for mart in MARTS_)
LOAD_TIME_COLUMNS = {"loaded_at", "quarantined_at"}


def backfill(env: dict[str, str], start: str, end: str, *extra: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sparkify.cli",
            "backfill",
            "--start",
            start,
            "--end",
            end,
            "--timeout",
            "1200",
            *extra,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1400,
    )
    result.report = f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-4000:]}"
    return result


def fingerprints(settings: Settings, tables: tuple[str, ...] = MARTS) -> dict[str, tuple[int, str]]:
    """Rows and an order-independent digest per table (load timestamps left out: they say when, not what)."""
    result = {}
    with warehouse_for(settings).cursor() as cur:
        for table in tables:
            schema, name = table.split(".")
            cur.execute(
                "select column_name from information_schema.columns "
                f"where table_schema = '{schema}' and table_name = '{name}' order by ordinal_position"
            )
            columns = [row[0] for row in cur.fetchall() if row[0] not in LOAD_TIME_COLUMNS]
            cur.execute(f"select {', '.join(columns)} from {table}")
            rows = sorted(repr(tuple(row)) for row in cur.fetchall())
            result[table] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    return result


def run(args: list[str], env: dict[str, str], cwd: Path = PROJECT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def dbt(env: dict[str, str], *args: str, project: Path = PROJECT) -> subprocess.CompletedProcess[str]:
    return run(
        [str(BIN / "dbt"), *args, "--profiles-dir", str(REPO), "--project-dir", str(project)], env, project
    )


def build_day_by_day(
    env: dict[str, str],
    days: tuple[str, ...],
    target: Path,
    after_each: Callable[[Settings, str], None] | None = None,
) -> Settings:
    """The pipeline without Airflow, as the DAG runs it: the song files staged, then each day staged and built
    (dbt build with its run_date), into the warehouse ``env`` names (a PostgreSQL database is created);
    ``after_each`` is called after each day's build. dbt's unit tests are left out: they read fixed inputs, not
    the day's data (tests/dbt/test_dbt_project.py runs them)."""
    settings = from_env(env)
    if settings.warehouse == "postgres":
        from sparkify.staging import postgres

        postgres.ensure_database(settings)
    warehouse_for(settings).stage_songs()
    for day in days:
        warehouse_for(settings).stage_events(date.fromisoformat(day))
        result = dbt(
            {"DBT_EXCLUDE_RESOURCE_TYPES": "unit_test", **env},
            "build",
            "--vars",
            f"{{run_date: '{day}'}}",
            "--target-path",
            str(target),
        )
        assert result.returncode == 0, result.stdout[-5000:]
        if after_each:
            after_each(settings, day)
    return settings
