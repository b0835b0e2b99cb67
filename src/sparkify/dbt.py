"""Cosmos configuration for dbt_sparkify, built once and shared by every DAG that runs the project."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cosmos import DbtTaskGroup, ExecutionConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, SourceRenderingBehavior, TestBehavior

from sparkify import tuning
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


RUN_DATE_ENV = "SPARKIFY_RUN_DATE"
# The Airflow run a dbt command belongs to: its results are kept under it (macros/record_dbt_results.sql).
RUN_ID_ENV = "SPARKIFY_RUN_ID"
# Read only at execution: a value that changes every run must not make dbt parse the project again.
EXECUTION_ENV = (RUN_DATE_ENV, RUN_ID_ENV)
# The DAG's dbt commands leave out the unit tests: they check the models' SQL on fixed inputs, not the day's data,
# so a daily run learns nothing from them (dbt's advice for production runs); `make test` runs them.
DAG_DBT_FLAGS = {"DBT_EXCLUDE_RESOURCE_TYPES": "unit_test"}
EXECUTION_MODES = {"local": ExecutionMode.LOCAL, "watcher": ExecutionMode.WATCHER}
# The watcher's sensors poke on a worker instead of deferring (docs/performance.md): a deferred sensor costs two
# task processes and the triggerer's loops per level of the graph, a poking one a single process that usually finds its node's
# result at the first poke, since it starts only once its upstream tasks succeeded. (Not in reschedule mode:
# Airflow 3 counts each reschedule as a new try, which Cosmos' sensor takes for a retry.) They run outside the
# writer pool, which only the build takes: a sensor waiting in it would keep the build from starting. Each
# holds a worker slot while it waits, so the executor needs more than two slots per run.
WATCHER_OPERATOR_ARGS = {"deferrable": False, "poke_interval": 1, "pool": "default_pool"}


def dag_dbt_env(settings: Settings) -> dict[str, str]:
    """The environment of the DAG's dbt commands (the run's day aside)."""
    return {**settings.dbt_env(), **DAG_DBT_FLAGS}


def task_group_args(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``DbtTaskGroup``: one task per model, then one per model's tests."""
    manifest = require_manifest(settings.manifest_path)
    project_config = ProjectConfig(
        dbt_project_path=settings.dbt_project_dir,
        manifest_path=manifest,
        install_dbt_deps=False,
        # Each run processes the day of its logical date, passed in the environment (not --vars, which makes
        # dbt parse the whole project again whenever the day changes).
        env_vars={**dag_dbt_env(settings), RUN_DATE_ENV: "{{ ds }}", RUN_ID_ENV: "{{ run_id }}"},
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


def run_dbt(settings: Settings, *args: str) -> Any:
    """Run one dbt command in-process on dbt_sparkify, with the project's environment and the DAG's profile;
    the command's result (``dbt parse``: the manifest)."""
    from dbt.cli.main import dbtRunner

    with warehouse_for(settings).profile_config().ensure_profile() as (profile_path, profile_env):
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
    return result.result


def project_files(project_dir: Path) -> dict[str, tuple[int, int]]:
    """Every file dbt parses in the project (not its target, logs or packages), with its mtime and size."""
    files = {}
    for folder, subfolders, names in os.walk(project_dir):
        if Path(folder) == project_dir:
            subfolders[:] = [name for name in subfolders if name not in {"target", "logs", "dbt_packages"}]
        for name in names:
            path = Path(folder) / name
            stat = path.stat()
            files[path.relative_to(project_dir).as_posix()] = (stat.st_mtime_ns, stat.st_size)
    return files


def build_manifest(settings: Settings) -> Path:
    """``dbt parse``: the manifest (and dbt's partial-parse cache) land in the project's target/."""
    run_dbt(settings, "parse", "--quiet")
    return settings.manifest_path


DOCS_FINGERPRINT = ".sparkify-docs-fingerprint"
DOCS_FILES = ("index.html", "manifest.json", "catalog.json")


def docs_fingerprint(settings: Settings) -> str | None:
    """What the dbt docs are generated from: the project's files and profiles, dbt's version, the project's
    environment, and the warehouse's tables and columns (the catalog). ``None`` where the catalog also holds
    what changes with every load (Redshift's table statistics)."""
    import hashlib
    import json

    from dbt.version import __version__ as dbt_version

    warehouse = warehouse_for(settings)
    if not warehouse.stable_catalog:
        return None
    digest = hashlib.sha256(f"dbt {dbt_version}\n{json.dumps(settings.dbt_env(), sort_keys=True)}".encode())
    project = settings.dbt_project_dir
    for name in sorted(project_files(project)):
        digest.update(f"\n{name}\n".encode() + (project / name).read_bytes())
    digest.update((settings.dbt_profiles_dir / "profiles.yml").read_bytes())
    with warehouse.cursor() as cur:
        cur.execute(
            "select table_schema, table_name, column_name, data_type from information_schema.columns "
            "where table_schema not in ('information_schema', 'pg_catalog') order by 1, 2, ordinal_position"
        )
        digest.update(repr(cur.fetchall()).encode())
    return digest.hexdigest()


def generate_docs(settings: Settings, force: bool = True) -> Path:
    """``dbt docs generate`` into the docs folder that the Airflow UI serves (index, manifest and catalog).

    Without ``force``, kept as they are when nothing they are generated from changed since they were (see
    ``docs_fingerprint``): a daily run then checks instead of regenerating (docs/performance.md).
    The compiled SQL they show is that of the day they were generated for."""
    import logging

    docs = settings.dbt_docs_dir
    stamp = docs / DOCS_FINGERPRINT
    fingerprint = docs_fingerprint(settings)
    current = all((docs / name).is_file() for name in DOCS_FILES) and stamp.is_file()
    if not force and fingerprint is not None and current and stamp.read_text() == fingerprint:
        logging.getLogger(__name__).info(
            "dbt docs in %s are current (project, profiles and warehouse columns unchanged): kept", docs
        )
        return docs / "index.html"
    docs.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    run_dbt(settings, "docs", "generate", "--quiet", "--target-path", str(docs))
    if fingerprint is not None:
        stamp.write_text(fingerprint)
    return docs / "index.html"
