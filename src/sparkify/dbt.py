"""Cosmos configuration for dbt_sparkify, built once and shared by every DAG that runs the project."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, SourceRenderingBehavior, TestBehavior

from sparkify.settings import Settings

PROFILE_NAME = "sparkify"


class ManifestMissingError(FileNotFoundError):
    """The DAG is rendered from a manifest the project builds; parsing never runs dbt."""


def require_manifest(path: Path) -> Path:
    if not path.is_file():
        raise ManifestMissingError(
            f"dbt manifest not found at {path}: build it with `make manifest` "
            "(dbt parse of dbt_sparkify), which `make demo`, `make backfill` and `make test` do for you"
        )
    return path


RUN_DATE_ENV = "SPARKIFY_RUN_DATE"
EXECUTION_MODES = {"local": ExecutionMode.LOCAL, "watcher": ExecutionMode.WATCHER}
WATCHER_POLL_SECONDS = 1


def task_group_args(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``DbtTaskGroup``: one task per model, then one per model's tests."""
    manifest = require_manifest(settings.manifest_path)
    project_config = ProjectConfig(
        dbt_project_path=settings.dbt_project_dir,
        manifest_path=manifest,
        install_dbt_deps=False,
        # Each run processes the day of its logical date, passed in the environment (not --vars, which makes
        # dbt parse the whole project again whenever the day changes).
        env_vars={**settings.dbt_env(), RUN_DATE_ENV: "{{ ds }}"},
    )
    # Cosmos wraps the path in Airflow's ObjectStoragePath, whose first use imports every provider's filesystem
    # (about 1-2 s at each parse, in every task process). The manifest is a local file: read it as one.
    project_config.manifest_path = manifest
    return {
        "project_config": project_config,
        "profile_config": profile_config(settings),
        "execution_config": ExecutionConfig(
            execution_mode=EXECUTION_MODES[settings.dbt_execution],
            invocation_mode=InvocationMode.DBT_RUNNER,
        ),
        "render_config": RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.AFTER_EACH,
            should_detach_multiple_parents_tests=True,
            # A task per source with a freshness check: `dbt source freshness` right after staging.
            source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
            # Computing each task's inlets and outlets (Airflow assets) costs ~1.3 s per task; the lineage is in
            # the dbt docs. (Set here: Cosmos overrides operator_args' emit_datasets with this one.)
            emit_datasets=False,
        ),
    }


def dbt_task_group(settings: Settings, group_id: str = "dbt_sparkify") -> DbtTaskGroup:
    """The dbt project as an Airflow task group (call inside a DAG).

    In watcher mode one producer task runs ``dbt build`` and every model and test keeps its own task, a sensor
    that reports that node's result. Only the producer writes: it alone takes the DuckDB writer pool, while the
    sensors (deferred to the triggerer, polling every second) wait outside it; a sensor that is retried or cleared
    runs its own node with dbt and may then wait for the warehouse's lock like any writer.
    """
    group = DbtTaskGroup(group_id=group_id, **task_group_args(settings))
    if settings.dbt_execution != "watcher":
        return group
    from cosmos.operators._watcher.base import BaseConsumerSensor

    for operator in _tasks(group):
        if isinstance(operator, BaseConsumerSensor):
            operator.pool = "default_pool"
            operator.poke_interval = WATCHER_POLL_SECONDS
    return group


def _tasks(group: Any) -> Iterator[Any]:
    """Every task of a task group, nested groups (a model's run and test) included."""
    for child in group.children.values():
        if hasattr(child, "children"):
            yield from _tasks(child)
        else:
            yield child


def profile_config(settings: Settings) -> ProfileConfig:
    """profiles.yml for DuckDB and PostgreSQL; on Redshift, the redshift_default Airflow connection (the same
    one the COPY tasks use) mapped to a dbt profile by Cosmos."""
    if settings.warehouse == "redshift":
        from cosmos.profiles import RedshiftUserPasswordProfileMapping

        return ProfileConfig(
            profile_name=PROFILE_NAME,
            target_name=settings.dbt_target,
            profile_mapping=RedshiftUserPasswordProfileMapping(
                conn_id=settings.redshift_conn_id, profile_args={"schema": "analytics"}
            ),
        )
    return ProfileConfig(
        profile_name=PROFILE_NAME,
        target_name=settings.dbt_target,
        profiles_yml_filepath=settings.dbt_profiles_dir / "profiles.yml",
    )


def run_dbt(settings: Settings, *args: str) -> None:
    """Run one dbt command in-process on dbt_sparkify, with the project's environment and the DAG's profile."""
    from dbt.cli.main import dbtRunner

    with profile_config(settings).ensure_profile() as (profile_path, profile_env):
        env = {**settings.dbt_env(), **profile_env}
        env_before = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        try:
            result = dbtRunner().invoke(
                [
                    *args,
                    "--project-dir",
                    str(settings.dbt_project_dir),
                    "--profiles-dir",
                    str(profile_path.parent),
                    "--target",
                    settings.dbt_target,
                ]
            )
        finally:
            for key, value in env_before.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    if not result.success:
        raise RuntimeError(f"dbt {' '.join(args)} on {settings.dbt_project_dir} failed: {result.exception}")


def warm_up(settings: Settings) -> bool:
    """Run dbt once in this process (``dbt ls``, nothing written to the project, the warehouse not opened), so
    that every task process forked from it later starts with dbt warm: its adapter registered and the project's
    macros compiled. A failure only leaves the tasks starting dbt cold: logged, never raised.

    A dbt task then costs about 0.7 s less (measured in a forked child: 0.8 s instead of 1.5 s for one model).
    The DAG's tasks are forked from the executor's process: the scheduler with ``sparkify.executor``'s
    LocalExecutor, or a Celery worker configured by ``sparkify.celery_config``.
    """
    import logging
    import tempfile
    import time

    log = logging.getLogger(__name__)
    if settings.warehouse == "redshift":
        log.info(
            "dbt not warmed up: the Redshift profile comes from an Airflow connection, resolved per task"
        )
        return False
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="sparkify-dbt-warm-up-") as scratch:
            run_dbt(
                settings,
                "ls",
                # dbt's static parser (the Rust dbt-extractor) must not run here: a process forked after it has
                # run hangs forever at its next use (a full parse in a task, e.g. `dbt docs generate`).
                "--no-static-parser",
                "--quiet",
                "--log-level",
                "none",
                "--no-write-json",
                "--target-path",
                str(Path(scratch) / "target"),
                "--log-path",
                str(Path(scratch) / "logs"),
            )
    except Exception:  # slower tasks, not wrong ones: never stop the scheduler or a worker for it
        log.warning("dbt warm-up failed; dbt tasks will start cold", exc_info=True)
        return False
    log.info(
        "dbt warmed up in %.1f s for the task processes forked from this one", time.perf_counter() - start
    )
    return True


def build_manifest(settings: Settings) -> Path:
    """``dbt parse``: the manifest (and dbt's partial-parse cache) land in the project's target/."""
    run_dbt(settings, "parse", "--quiet")
    return settings.manifest_path


def generate_docs(settings: Settings) -> Path:
    """``dbt docs generate`` into the docs folder that the Airflow UI serves (index, manifest and catalog)."""
    settings.dbt_docs_dir.mkdir(parents=True, exist_ok=True)
    run_dbt(settings, "docs", "generate", "--quiet", "--target-path", str(settings.dbt_docs_dir))
    return settings.dbt_docs_dir / "index.html"


def data_test_count(settings: Settings) -> int:
    """How many dbt data tests the project runs (a run that reaches its summary has passed them all)."""
    import json

    nodes = json.loads(require_manifest(settings.manifest_path).read_text())["nodes"].values()
    return sum(node["resource_type"] == "test" for node in nodes)
