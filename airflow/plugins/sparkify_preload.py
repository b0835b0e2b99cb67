"""Import dbt once in every long-lived Airflow process (scheduler, Celery worker).

Task processes are forked from these (LocalExecutor and Celery's prefork pool both fork on Linux), so a Cosmos
task that runs dbt in-process finds it already imported instead of paying about two seconds per task.
"""

from __future__ import annotations

import dbt.adapters.factory
import dbt.cli.main  # noqa: F401
from airflow.plugins_manager import AirflowPlugin


class SparkifyPreloadPlugin(AirflowPlugin):
    name = "sparkify_preload"
