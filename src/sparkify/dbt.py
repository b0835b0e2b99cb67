"""Cosmos configuration for dbt_sparkify, built once and shared by every DAG that runs the project."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cosmos import DbtTaskGroup, ExecutionConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, SourceRenderingBehavior, TestBehavior

from sparkify import tuning
from sparkify.dbt_run import RUN_DATE_ENV, RUN_END_DATE_ENV, RUN_ID_ENV, dag_dbt_env
from sparkify.run_days import FIRST_DAY_TEMPLATE, LAST_DAY_TEMPLATE
from sparkify.settings import Settings
from sparkify.warehouses import warehouse_for


class ManifestMissingError(FileNotFoundError):
    """The DAG is rendered from a manifest the project builds; parsing never runs dbt."""


def require_manifest(path: Path) -> Path:
    if not path.is_file():
        raise ManifestMissingError(
            f"dbt manifest not found at {path}: build it with `make manifest` "
            "(dbt parse of dbt_sparkify), which `make demo`, `make backfill` and `make test` do for you"
        )
    return path


EXECUTION_MODES = {"local": ExecutionMode.LOCAL, "watcher": ExecutionMode.WATCHER}
# The watcher's sensors poke on a worker instead of deferring (docs/performance.md): a deferred sensor costs two
# task processes and the triggerer's loops per level of the graph, a poking one a single process that usually finds its node's
# result at the first poke, since it starts only once its upstream tasks succeeded. (Not in reschedule mode:
# Airflow 3 counts each reschedule as a new try, which Cosmos' sensor takes for a retry.) They run outside the
# writer pool, which only the build takes: a sensor waiting in it would keep the build from starting. Each
# holds a worker slot while it waits, so the executor needs more than two slots per run.
WATCHER_OPERATOR_ARGS = {"deferrable": False, "poke_interval": 1, "pool": "default_pool"}


def task_group_args(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``DbtTaskGroup``: one task per model, then one per model's tests."""
    manifest = require_manifest(settings.manifest_path)
    project_config = ProjectConfig(
        dbt_project_path=settings.dbt_project_dir,
        manifest_path=manifest,
        install_dbt_deps=False,
        # Each run processes the days of its data interval, passed in the environment (not --vars, which makes
        # dbt parse the whole project again whenever the days change).
        env_vars={
            **dag_dbt_env(settings),
            RUN_DATE_ENV: FIRST_DAY_TEMPLATE,
            RUN_END_DATE_ENV: LAST_DAY_TEMPLATE,
            RUN_ID_ENV: "{{ run_id }}",
        },
    )
    tuning.local_manifest(project_config, manifest, settings)
    warehouse = warehouse_for(settings)
    watcher = settings.dbt_execution == "watcher"
    return {
        "project_config": project_config,
        "profile_config": warehouse.profile_config(),
        "operator_args": dict(WATCHER_OPERATOR_ARGS) if watcher else {},
        "execution_config": ExecutionConfig(
            execution_mode=EXECUTION_MODES[settings.dbt_execution],
            invocation_mode=InvocationMode.DBT_RUNNER,
            # The build: the one watcher task that writes (the DAG's pool, its default_args, otherwise).
            setup_operator_args={"pool": warehouse.writer_pool or "default_pool"} if watcher else None,
        ),
        "render_config": RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.AFTER_EACH,
            # A test between two models as a task of its own once both are built. Cosmos' watcher pushes no
            # result for such a test (the watcher patch does): stock, it runs with its models' tests.
            should_detach_multiple_parents_tests=not watcher or tuning.active(settings.tuning),
            # A task per source with a freshness check: `dbt source freshness` right after staging.
            source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
            # Computing each task's inlets and outlets (Airflow assets) is slow (docs/performance.md); the
            # lineage is in the dbt docs. (Set here: Cosmos overrides operator_args' emit_datasets with this one.)
            emit_datasets=False,
        ),
    }


def dbt_task_group(settings: Settings, group_id: str = "dbt_sparkify") -> DbtTaskGroup:
    """The dbt project as an Airflow task group (call inside a DAG).

    In watcher mode (the default) one producer task runs ``dbt build`` and every model, model's tests, detached
    test and source keeps its own task, a sensor that reports that node's result. Only the producer writes: it
    alone takes the warehouse's writer pool, while the sensors, polling every second, run outside it; a sensor
    that is retried runs its own node with dbt and may then wait for the warehouse's lock like any writer. With
    the tuning on (``sparkify.tuning.watcher``) a cleared run builds again.
    """
    group = DbtTaskGroup(group_id=group_id, **task_group_args(settings))
    tuning.tune_task_group(group, settings)
    return group
