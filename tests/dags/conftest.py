from __future__ import annotations

import pytest

from sparkify import settings as settings_module
from tests.conftest import REPO


def parse(monkeypatch, tmp_path, **env: str):
    """The DAG folder parsed as the dag-processor parses it, with the default (DuckDB) settings and ``env``."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("SPARKIFY_HOME", str(REPO))
    monkeypatch.setenv("SPARKIFY_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    for name in (
        "SPARKIFY_WAREHOUSE",
        "SPARKIFY_RETRIES",
        "SPARKIFY_LAKE",
        "SPARKIFY_DBT_EXECUTION",
        "SPARKIFY_START_DATE",
        "SPARKIFY_END_DATE",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings_module.settings.cache_clear()
    try:
        return DagBag(dag_folder=str(REPO / "airflow" / "dags"))
    finally:
        settings_module.settings.cache_clear()


@pytest.fixture
def dagbag(monkeypatch, tmp_path):
    yield parse(monkeypatch, tmp_path)
    settings_module.settings.cache_clear()


@pytest.fixture
def local_dag(monkeypatch, tmp_path):
    """sparkify_daily with Cosmos' LOCAL execution: a dbt command per model and per test task."""
    yield parse(monkeypatch, tmp_path, SPARKIFY_DBT_EXECUTION="local").dags["sparkify_daily"]
    settings_module.settings.cache_clear()
