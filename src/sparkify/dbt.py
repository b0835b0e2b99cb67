"""Cosmos configuration for dbt_sparkify, built once and shared by every DAG that runs the project."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosmos import DbtTaskGroup, ExecutionConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, SourceRenderingBehavior, TestBehavior

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
# The DAG's dbt commands leave out the unit tests: they check the models' SQL on fixed inputs, not the day's data,
# so a daily run learns nothing from them (dbt's advice for production runs); `make test` runs them.
DAG_DBT_FLAGS = {"DBT_EXCLUDE_RESOURCE_TYPES": "unit_test"}
EXECUTION_MODES = {"local": ExecutionMode.LOCAL, "watcher": ExecutionMode.WATCHER}
WATCHER_POLL_SECONDS = 1


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
        env_vars={**dag_dbt_env(settings), RUN_DATE_ENV: "{{ ds }}"},
    )
    # Cosmos wraps the path in Airflow's ObjectStoragePath, whose first use imports every provider's filesystem
    # (about 1-2 s at each parse, in every task process). The manifest is a local file: read it as one.
    project_config.manifest_path = manifest
    return {
        "project_config": project_config,
        "profile_config": warehouse_for(settings).profile_config(),
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

    In watcher mode (the default) one producer task runs ``dbt build`` and every model, model's tests, detached
    test and source keeps its own task, a sensor that reports that node's result (``sparkify.watcher``). Only
    the producer writes: it alone takes the DuckDB writer pool, while the sensors, polling every second, run
    outside it; a sensor that is retried runs its own node with dbt and may then wait for the warehouse's lock
    like any writer (a cleared run builds again).
    """
    group = DbtTaskGroup(group_id=group_id, **task_group_args(settings))
    if settings.dbt_execution != "watcher":
        return group
    from sparkify.watcher import tune

    tune(_tasks(group), WATCHER_POLL_SECONDS)
    return group


def _tasks(group: Any) -> Iterator[Any]:
    """Every task of a task group, nested groups (a model's run and test) included."""
    for child in group.children.values():
        if hasattr(child, "children"):
            yield from _tasks(child)
        else:
            yield child


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


# Commands whose nodes come from the project's manifest: a task may run them on the warm-up's parsed project.
SHARED_MANIFEST_COMMANDS = frozenset({"run", "test", "build", "seed", "snapshot", "source"})
# Commands whose JSON artifacts no task reads (LOCAL's model and test tasks).
NO_ARTIFACT_COMMANDS = frozenset({"run", "test"})


@dataclass(frozen=True)
class _Parsed:
    """The project as the warm-up parsed it, and what the parse depended on."""

    manifest: Any
    files: dict[str, tuple[int, int]]
    env: dict[str, str | None]


_PARSED: _Parsed | None = None


def _project_files(project_dir: Path) -> dict[str, tuple[int, int]]:
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


def _parse_env(manifest: Any, environ: Mapping[str, str]) -> dict[str, str | None]:
    """The environment a parse depended on: what the project read while parsing (dbt records it), and every
    variable of the project's and dbt's own (the day, read only at execution, excepted)."""
    keys = {key for key in environ if key.startswith(("SPARKIFY_", "DBT_"))} | set(manifest.env_vars)
    keys -= {RUN_DATE_ENV} - set(manifest.env_vars)
    return {key: environ.get(key) for key in sorted(keys)}


def shared_manifest(settings: Settings, args: list[str]) -> Any:
    """The warm-up's parsed project for this dbt command, or ``None`` (dbt then loads it as usual): only for a
    command on the manifest's nodes, without ``--vars``, while no project file and no variable it was parsed
    with has changed."""
    parsed = _PARSED
    if parsed is None or not args or args[0] not in SHARED_MANIFEST_COMMANDS or "--vars" in args:
        return None
    if _project_files(settings.dbt_project_dir) != parsed.files:
        return None
    if _parse_env(parsed.manifest, os.environ) != parsed.env:
        return None
    return parsed.manifest


class _SharedManifestRunner:
    """What Cosmos' ``get_runner`` returns in a warmed process: a dbtRunner given the warm-up's parsed project
    when ``shared_manifest`` allows it, so a task skips loading the project (about 0.2 s of a 0.65 s task). A
    model's or a test's task then also skips writing dbt's JSON artifacts (manifest and run results, 0.1 s),
    which nothing reads there: Cosmos takes the result from the runner, the compiled SQL is still written, and
    a WATCHER build and freshness checks keep theirs."""

    def __init__(self, settings: Settings, callbacks: list[Any] | None) -> None:
        self.settings = settings
        self.callbacks = callbacks

    def invoke(self, args: list[str], **kwargs: Any) -> Any:
        import logging

        from dbt.cli.main import dbtRunner

        args = list(args)
        manifest = shared_manifest(self.settings, args)
        if manifest is not None:
            if args[0] in NO_ARTIFACT_COMMANDS and "--write-json" not in args:
                args.append("--no-write-json")
            logging.getLogger(__name__).info(
                "dbt runs on the project as the warm-up parsed it (unchanged since): %s", " ".join(args)
            )
        return dbtRunner(manifest=manifest, callbacks=self.callbacks).invoke(args, **kwargs)


def _share_parsed_project(settings: Settings, manifest: Any) -> None:
    """Keep the warm-up's parsed project for the task processes forked from this one (Cosmos runs each dbt
    command through ``cosmos.dbt.runner.get_runner``)."""
    global _PARSED
    import cosmos.dbt.runner

    # The environment of a dbt task: this process's, with the project's variables (Cosmos' env_vars).
    environ = {**os.environ, **dag_dbt_env(settings)}
    _PARSED = _Parsed(manifest, _project_files(settings.dbt_project_dir), _parse_env(manifest, environ))
    cosmos.dbt.runner.get_runner = lambda callbacks=None: _SharedManifestRunner(settings, callbacks)


def warm_up(settings: Settings) -> bool:
    """Parse the project once in this process (``dbt parse`` into a scratch folder: nothing written to the
    project, the warehouse not opened), so that every task process forked from it later starts with dbt warm:
    its adapter registered, the project's macros compiled, and the parsed project at hand (``shared_manifest``).
    A failure only leaves the tasks starting dbt cold: logged, never raised.

    A dbt task then costs about 0.7 s less (measured in a forked child: 0.8 s instead of 1.5 s for one model),
    and about 0.2 s less again with the parsed project. The DAG's tasks are forked from the executor's process:
    the scheduler with ``sparkify.executor``'s LocalExecutor, or a Celery worker configured by
    ``sparkify.celery_config``.
    """
    import logging
    import tempfile
    import time

    log = logging.getLogger(__name__)
    if reason := warehouse_for(settings).cold_dbt_reason:
        log.info("dbt not warmed up: %s", reason)
        return False
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="sparkify-dbt-warm-up-") as scratch:
            manifest = run_dbt(
                settings,
                "parse",
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
        _share_parsed_project(settings, manifest)
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
    for name in sorted(_project_files(project)):
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
    ``docs_fingerprint``): a daily run then checks in a few milliseconds instead of regenerating (about 2 s).
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


def data_test_count(settings: Settings) -> int:
    """How many dbt data tests the project runs (a run that reaches its summary has passed them all)."""
    import json

    nodes = json.loads(require_manifest(settings.manifest_path).read_text())["nodes"].values()
    return sum(node["resource_type"] == "test" for node in nodes)
