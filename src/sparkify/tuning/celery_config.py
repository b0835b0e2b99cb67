"""Patch: Celery configuration for the CeleryExecutor, Airflow's default plus dbt warmed up in each worker.

``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=sparkify.tuning.celery_config.CELERY_CONFIG``. A Celery worker's main
process warms dbt and runs the DAG files once when it starts (``worker_init``), before it forks its pool, whose
processes fork the task processes: each task then starts with dbt warm and its DAG file's imports loaded, as
under the project's LocalExecutor (``sparkify.tuning.executor``). With the tuning off it is Airflow's default.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import worker_init

from sparkify.settings import settings
from sparkify.tuning.warm import warm

CELERY_CONFIG: dict[str, Any] = dict(DEFAULT_CELERY_CONFIG)


@worker_init.connect
def _warm_up_dbt(**_: Any) -> None:
    warm(settings())
