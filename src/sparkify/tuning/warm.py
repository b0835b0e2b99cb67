"""Warming a process up before it forks task processes: dbt imported and parsed (``sparkify.tuning.dbt_parse``)
and the DAG files' imports loaded. Called by the project's executor (``sparkify.tuning.executor``) and its Celery
workers (``sparkify.tuning.celery_config``) as they start."""

from __future__ import annotations

import logging
import runpy
import time
from pathlib import Path

from sparkify.settings import Settings
from sparkify.tuning import active

log = logging.getLogger(__name__)


def import_dag_modules(dags_folder: Path) -> list[str]:
    """Run each DAG file once here, so that a task process forked later finds every module its DAG file imports
    already loaded. A DAG file that fails here only logs a warning (the dag-processor reports it as usual)."""
    start = time.perf_counter()
    ran = []
    for path in sorted(dags_folder.glob("*.py")):
        try:
            runpy.run_path(str(path), run_name=f"sparkify_warm_up_{path.stem}")
        except Exception:
            log.warning(
                "DAG file %s failed in the warm-up; its tasks will import it cold", path, exc_info=True
            )
            continue
        ran.append(path.name)
    log.info(
        "DAG files run once for the task processes forked from this one in %.2f s: %s",
        time.perf_counter() - start,
        ", ".join(ran) or "none",
    )
    return ran


def warm(settings: Settings) -> bool:
    """What each task process forked from this one should find done: dbt warmed up
    (``sparkify.tuning.dbt_parse``) and its DAG file's imports loaded. Called by the project's executor and its
    Celery workers as they start."""
    if not active(settings.tuning):
        return False
    from airflow.configuration import conf

    from sparkify.tuning.dbt_parse import warm_up

    warm_up(settings)
    import_dag_modules(Path(conf.get("core", "dags_folder")))
    return True
