"""dbt_sparkify run in-process, without Cosmos: the environment of the DAG's dbt commands, ``run_dbt``, the
manifest the DAG is rendered from, and the dbt docs. ``sparkify.dbt`` (the Cosmos configuration) and
``sparkify.tuning`` (its warm-up) both build on this module, which imports neither."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sparkify.settings import Settings
from sparkify.warehouses import warehouse_for

# The run's first and last day (macros/run_date.sql).
RUN_DATE_ENV = "SPARKIFY_RUN_DATE"
RUN_END_DATE_ENV = "SPARKIFY_RUN_END_DATE"
# The Airflow run a dbt command belongs to: its results are kept under it (macros/record_dbt_results.sql).
RUN_ID_ENV = "SPARKIFY_RUN_ID"
# Read only at execution: a value that changes every run must not make dbt parse the project again.
EXECUTION_ENV = (RUN_DATE_ENV, RUN_END_DATE_ENV, RUN_ID_ENV)
# The DAG's dbt commands leave out the unit tests: they check the models' SQL on fixed inputs, not the day's data,
# so a daily run learns nothing from them (dbt's advice for production runs); `make test` runs them.
DAG_DBT_FLAGS = {"DBT_EXCLUDE_RESOURCE_TYPES": "unit_test"}


def dag_dbt_env(settings: Settings) -> dict[str, str]:
    """The environment of the DAG's dbt commands (the run's days aside)."""
    return {**settings.dbt_env(), **DAG_DBT_FLAGS}


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
