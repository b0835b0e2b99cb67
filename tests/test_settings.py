"""Settings come from the environment, with defaults inside the repository, and refuse what cannot be right."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from sparkify.settings import from_env, validate_identifier
from sparkify.warehouses import warehouse_for
from tests.conftest import REPO


def test_defaults_stay_inside_the_repository():
    settings = from_env({"SPARKIFY_HOME": str(REPO)})
    assert settings.warehouse == "duckdb"
    assert settings.lake == str(REPO / ".local" / "lake")
    assert settings.duckdb_path == REPO / ".local" / "sparkify.duckdb"
    assert warehouse_for(settings).writer_pool == "sparkify_duckdb"
    assert warehouse_for(settings).task_args() == {"pool": "sparkify_duckdb"}


def test_environment_overrides(tmp_path):
    settings = from_env(
        {
            "SPARKIFY_HOME": str(REPO),
            "SPARKIFY_LAKE": str(tmp_path),
            "SPARKIFY_DUCKDB_PATH": str(tmp_path / "w.duckdb"),
            "SPARKIFY_WAREHOUSE": "Postgres",
            "SPARKIFY_RETRIES": "0",
        }
    )
    assert settings.lake == str(tmp_path)
    assert settings.warehouse == "postgres"
    assert warehouse_for(settings).writer_pool is None
    assert warehouse_for(settings).task_args() == {}
    assert settings.default_task_args() == {
        "retries": 0,
        "retry_delay": settings.retry_delay,
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
    }
    assert settings.dbt_env()["SPARKIFY_DUCKDB_PATH"] == str(tmp_path / "w.duckdb")


def test_unknown_warehouse_is_refused():
    with pytest.raises(ValueError, match="SPARKIFY_WAREHOUSE"):
        from_env({"SPARKIFY_WAREHOUSE": "oracle"})


@pytest.mark.parametrize("name", ["raw; drop table x", "1raw", "raw-data", ""])
def test_identifiers_are_validated(name):
    with pytest.raises(ValueError, match="identifier"):
        validate_identifier(name, "SPARKIFY_RAW_SCHEMA")
    with pytest.raises(ValueError):
        from_env({"SPARKIFY_RAW_SCHEMA": name})


def test_the_postgres_password_stays_out_of_reprs_and_dbt_env():
    settings = from_env(
        {"SPARKIFY_HOME": str(REPO), "SPARKIFY_PG_PASSWORD": "s3cr3t-value", "SPARKIFY_PG_PORT": "6543"}
    )
    assert settings.postgres.password == "s3cr3t-value"
    assert settings.postgres.port == 6543
    assert "s3cr3t-value" not in repr(settings)
    assert "s3cr3t-value" not in str(settings.dbt_env())
    assert settings.dbt_env()["SPARKIFY_PG_PORT"] == "6543"


@pytest.mark.parametrize("value", ["-0.1", "1.5", "lots"])
def test_the_bad_record_ratio_is_a_share(value):
    with pytest.raises(ValueError, match="SPARKIFY_MAX_BAD_RATIO"):
        from_env({"SPARKIFY_HOME": str(REPO), "SPARKIFY_MAX_BAD_RATIO": value})


@pytest.mark.parametrize("name", ["landing", "analytics", "analytics_staging"])
def test_a_duckdb_file_named_like_a_schema_is_refused(tmp_path, name):
    # Refused when the warehouse is picked, before any command or DAG uses it.
    with pytest.raises(ValueError, match="named like the schema"):
        warehouse_for(
            from_env({"SPARKIFY_HOME": str(REPO), "SPARKIFY_DUCKDB_PATH": str(tmp_path / f"{name}.duckdb")})
        )
    # The same name is fine for PostgreSQL, which does not use the file.
    postgres = from_env(
        {
            "SPARKIFY_HOME": str(REPO),
            "SPARKIFY_WAREHOUSE": "postgres",
            "SPARKIFY_DUCKDB_PATH": str(tmp_path / f"{name}.duckdb"),
        }
    )
    assert warehouse_for(postgres).name == "postgres"


@pytest.mark.parametrize(
    ("name", "reserving"),
    [
        ("raw", "redshift"),
        ("user", "postgres, redshift"),
        ("timestamp", "redshift"),
        ("offset", "duckdb, postgres, redshift"),
    ],
)
def test_a_schema_named_by_a_reserved_word_is_refused(name, reserving):
    with pytest.raises(ValueError, match="SPARKIFY_RAW_SCHEMA") as error:
        from_env({"SPARKIFY_HOME": str(REPO), "SPARKIFY_RAW_SCHEMA": name})
    assert f"reserved word on {reserving}" in str(error.value)


@pytest.mark.parametrize("name", ["Landing", "landing-zone", "land ing", '"landing"'])
def test_a_schema_that_is_not_a_plain_lower_case_identifier_is_refused(name):
    with pytest.raises(ValueError, match="lower-case"):
        from_env({"SPARKIFY_HOME": str(REPO), "SPARKIFY_RAW_SCHEMA": name})


def test_every_warehouse_has_its_reserved_words_with_their_source():
    from sparkify.settings import reserved_words

    words = reserved_words()
    assert {"raw", "timestamp", "user"} <= words["redshift"]
    assert {"select", "user"} <= words["postgres"] and {"select", "offset"} <= words["duckdb"]
    for warehouse in words:
        header = (
            (REPO / "src" / "sparkify" / "reserved_words" / f"{warehouse}.txt").read_text().splitlines()[:3]
        )
        assert any("Source:" in line for line in header), warehouse


def test_the_schedule_s_days_come_from_the_environment():
    default = from_env({"SPARKIFY_HOME": str(REPO)})
    assert (default.start_date, default.end_date) == (date(2018, 11, 1), None)
    assert default.end_datetime is None
    settings = from_env(
        {"SPARKIFY_HOME": str(REPO), "SPARKIFY_START_DATE": "2019-01-01", "SPARKIFY_END_DATE": " 2019-12-31 "}
    )
    assert settings.start_datetime == datetime(2019, 1, 1, tzinfo=UTC)
    assert settings.end_datetime == datetime(2019, 12, 31, tzinfo=UTC)
    with pytest.raises(ValueError, match="SPARKIFY_START_DATE must be a day as YYYY-MM-DD"):
        from_env({"SPARKIFY_HOME": str(REPO), "SPARKIFY_START_DATE": "1/11/2018"})
    with pytest.raises(ValueError, match="is before SPARKIFY_START_DATE"):
        from_env({"SPARKIFY_HOME": str(REPO), "SPARKIFY_END_DATE": "2018-10-31"})


def test_the_arrival_wait_and_the_deadline_come_from_the_environment():
    from datetime import timedelta

    from sparkify.settings import spoken

    default = from_env({"SPARKIFY_HOME": str(REPO)})
    assert (default.arrival_timeout, default.arrival_poke, default.deadline) == (
        timedelta(hours=6),
        timedelta(minutes=5),
        timedelta(hours=3),
    )
    settings = from_env(
        {
            "SPARKIFY_HOME": str(REPO),
            "SPARKIFY_ARRIVAL_TIMEOUT": "90s",
            "SPARKIFY_ARRIVAL_POKE": "2",
            "SPARKIFY_DEADLINE": " 1d ",
        }
    )
    assert (settings.arrival_timeout, settings.arrival_poke, settings.deadline) == (
        timedelta(seconds=90),
        timedelta(seconds=2),
        timedelta(days=1),
    )
    for text in ("6 hours", "-1h", "1.5h", ""):
        with pytest.raises(ValueError, match="SPARKIFY_DEADLINE must be a duration such as 6h"):
            from_env({"SPARKIFY_HOME": str(REPO), "SPARKIFY_DEADLINE": text})
    assert [spoken(timedelta(seconds=s)) for s in (0, 45, 90, 120, 5400, 21600)] == [
        "0 s",
        "45 s",
        "90 s",
        "2 min",
        "1 h 30 min",
        "6 h",
    ]
