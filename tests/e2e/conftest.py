"""What the end-to-end modules share: the two generated days they backfill, their Airflow environment, and the
marts those days give when built without Airflow (the reference every executor's backfill must equal)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sparkify.datagen import generate
from sparkify.local_airflow import free_port
from tests.conftest import REPO, build_day_by_day, fingerprints

DAYS = ("2018-11-01", "2018-11-02")
SEED = 11


def two_days(root: Path) -> Path:
    """The two days, generated under ``root``: the same files in every module."""
    return generate(root / "lake", scale=1, seed=SEED, days=len(DAYS)).root


def airflow_workspace(root: Path, lake: Path, **extra: str) -> dict[str, str]:
    """The environment of a backfill of ``lake`` into a DuckDB file and an Airflow home of its own, under ``root``."""
    return {
        **os.environ,
        "SPARKIFY_LAKE": str(lake),
        "SPARKIFY_DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "AIRFLOW_HOME": str(root / "airflow"),
        "SPARKIFY_AIRFLOW_PORT": str(free_port()),
        "SPARKIFY_DBT_DOCS_DIR": str(root / "dbt_docs"),
        **extra,
    }


@pytest.fixture(scope="session")
def built_without_airflow(tmp_path_factory) -> dict[str, dict[str, tuple[int, str]]]:
    """The two days staged and built day by day in this process (no Airflow): the marts' fingerprints after
    each day."""
    root = tmp_path_factory.mktemp("without-airflow")
    env = {
        **os.environ,
        "SPARKIFY_HOME": str(REPO),
        "SPARKIFY_LAKE": str(two_days(root)),
        "SPARKIFY_DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "DBT_LOG_PATH": str(root / "logs"),
        "DO_NOT_TRACK": "1",
    }
    after: dict[str, dict[str, tuple[int, str]]] = {}
    build_day_by_day(
        env, DAYS, root / "target", lambda settings, day: after.update({day: fingerprints(settings)})
    )
    assert all(rows > 0 for marts in after.values() for rows, _ in marts.values()), after
    return after


def task_logs(home: str | Path, pattern: str) -> list[Path]:
    return sorted(
        Path(home, "logs", "dag_id=sparkify_daily").glob(f"run_id=*/task_id={pattern}/attempt=*.log")
    )


def assert_warmed_before_forking(home: str | Path) -> None:
    scheduler_log = Path(home, "logs", "scheduler.log").read_text()
    assert "Loaded executor: ::sparkify.tuning.executor.WarmLocalExecutor" in scheduler_log
    warmed = scheduler_log.index("dbt warmed up in")
    assert warmed < scheduler_log.index("Worker starting up"), (
        "the executor forked its workers before dbt ran"
    )
    assert "dbt warm-up failed" not in scheduler_log
