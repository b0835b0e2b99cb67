from __future__ import annotations

import pytest

from sparkify import settings as settings_module
from tests.conftest import REPO


@pytest.fixture
def dagbag(monkeypatch, tmp_path):
    """The DAG folder parsed as the dag-processor parses it, with the default (DuckDB) settings."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("SPARKIFY_HOME", str(REPO))
    monkeypatch.setenv("SPARKIFY_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    for name in ("SPARKIFY_WAREHOUSE", "SPARKIFY_RETRIES", "SPARKIFY_LAKE"):
        monkeypatch.delenv(name, raising=False)
    settings_module.settings.cache_clear()
    yield DagBag(dag_folder=str(REPO / "airflow" / "dags"))
    settings_module.settings.cache_clear()
