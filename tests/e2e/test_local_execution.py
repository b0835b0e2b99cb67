"""The first of the two days backfilled through the scheduler with Cosmos' LOCAL execution (a dbt command per
model and test task) in place of the watcher: the same marts as the pipeline built without Airflow, every dbt task
on the project as the executor's warm-up parsed it. One day: a dbt command per task is what is tested, and a
second day would run the same commands again."""

from __future__ import annotations

import pytest

from sparkify.settings import from_env
from tests.conftest import MARTS, backfill, fingerprints
from tests.e2e.conftest import DAYS, airflow_workspace, assert_warmed_before_forking, task_logs, two_days

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def local_backfill(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e-local")
    env = airflow_workspace(root, two_days(root), SPARKIFY_DBT_EXECUTION="local")
    result = backfill(env, DAYS[0], DAYS[0])
    assert result.returncode == 0, result.report
    return env


def test_local_execution_builds_the_same_marts_on_the_warm_up_parse(local_backfill, built_without_airflow):
    assert fingerprints(from_env(local_backfill), MARTS) == built_without_airflow[DAYS[0]]
    home = local_backfill["AIRFLOW_HOME"]
    assert_warmed_before_forking(home)
    # Each dbt model and test task ran on the project as the warm-up parsed it, without loading it again.
    dbt_tasks = task_logs(home, "dbt_sparkify.*")
    assert len(dbt_tasks) >= 20
    not_shared = [str(path) for path in dbt_tasks if "as the warm-up parsed it" not in path.read_text()]
    assert not not_shared, not_shared[:3]
    # Model and test tasks write no JSON artifacts (nothing reads them); freshness checks keep sources.json.
    model = next(path for path in dbt_tasks if ".dim_users.run" in str(path)).read_text()
    freshness = next(path for path in dbt_tasks if "_source/" in str(path)).read_text()
    assert "--no-write-json" in model and "--no-write-json" not in freshness
