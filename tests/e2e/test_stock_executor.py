"""The first of the two days backfilled on Airflow's stock LocalExecutor (as managed Airflow and the official
image run it), with every patch off (``sparkify.tuning``): Cosmos' own watcher classes, no warm-up, each task
process loading dbt and the project itself; the same marts as the pipeline built without Airflow."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sparkify.settings import from_env
from tests.conftest import MARTS, backfill, fingerprints
from tests.e2e.conftest import DAYS, airflow_workspace, task_logs, two_days

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def stock_backfill(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e-stock")
    env = airflow_workspace(
        root, two_days(root), AIRFLOW__CORE__EXECUTOR="LocalExecutor", SPARKIFY_TUNING="off"
    )
    result = backfill(env, DAYS[0], DAYS[0])
    assert result.returncode == 0, result.report
    return env


def test_the_stock_local_executor_builds_the_same_marts(stock_backfill, built_without_airflow):
    assert fingerprints(from_env(stock_backfill), MARTS) == built_without_airflow[DAYS[0]]
    scheduler_log = Path(stock_backfill["AIRFLOW_HOME"], "logs", "scheduler.log").read_text()
    loaded = re.findall(r"Loaded executor: (\S+)", scheduler_log)
    assert loaded and all(
        name.strip(":").endswith("LocalExecutor") and "Warm" not in name for name in loaded
    ), loaded
    assert "dbt warmed up" not in scheduler_log
    # No task ran on a shared parse: each loaded the project as dbt does by itself.
    builds = task_logs(stock_backfill["AIRFLOW_HOME"], "dbt_sparkify.dbt_producer_watcher")
    assert len(builds) == 1 and not any("as the warm-up parsed it" in build.read_text() for build in builds)
