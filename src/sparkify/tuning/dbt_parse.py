"""Patch: dbt parsed once per worker, shared with the dbt tasks forked from it.

``warm_up`` runs ``dbt parse`` in the executor's process (the scheduler under ``tuning.executor``, a Celery
worker under ``tuning.celery_config``) before it forks its task processes. Each dbt task then starts with dbt
imported, its adapter registered and the project's macros compiled, and, through Cosmos' ``get_runner``
(replaced here), runs on the parsed project while nothing it was parsed from has changed. Applied only through
``sparkify.tuning.warm.warm``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkify.dbt_run import EXECUTION_ENV, dag_dbt_env, project_files, run_dbt
from sparkify.settings import Settings
from sparkify.warehouses import warehouse_for

log = logging.getLogger(__name__)

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
    # The variables the parse read. Kept apart from the manifest's env_vars, to which dbt adds the variables a
    # command reads while it runs (the on-run-end hooks read the run id).
    read: frozenset[str]


_PARSED: _Parsed | None = None


def _parse_env(read: frozenset[str], environ: Mapping[str, str]) -> dict[str, str | None]:
    """The environment a parse depended on: what the project read while parsing (dbt records it), and every
    variable of the project's and dbt's own (the day and the run id, read only at execution, excepted)."""
    keys = {key for key in environ if key.startswith(("SPARKIFY_", "DBT_"))} | read
    keys -= set(EXECUTION_ENV) - read
    return {key: environ.get(key) for key in sorted(keys)}


def shared_manifest(settings: Settings, args: list[str]) -> Any:
    """The warm-up's parsed project for this dbt command, or ``None`` (dbt then loads it as usual): only for a
    command on the manifest's nodes, without ``--vars``, while no project file and no variable it was parsed
    with has changed."""
    parsed = _PARSED
    if parsed is None or not args or args[0] not in SHARED_MANIFEST_COMMANDS or "--vars" in args:
        return None
    if project_files(settings.dbt_project_dir) != parsed.files:
        return None
    if _parse_env(parsed.read, os.environ) != parsed.env:
        return None
    return parsed.manifest


class _SharedManifestRunner:
    """What Cosmos' ``get_runner`` returns in a warmed process: a dbtRunner given the warm-up's parsed project
    when ``shared_manifest`` allows it, so a task skips loading the project. A model's or a test's task then
    also skips writing dbt's JSON artifacts (manifest and run results), which nothing reads there (what both
    buy: docs/performance.md): Cosmos takes the result from the runner, the compiled SQL is still written, and
    a WATCHER build and freshness checks keep theirs."""

    def __init__(self, settings: Settings, callbacks: list[Any] | None) -> None:
        self.settings = settings
        self.callbacks = callbacks

    def invoke(self, args: list[str], **kwargs: Any) -> Any:
        from dbt.cli.main import dbtRunner

        args = list(args)
        manifest = shared_manifest(self.settings, args)
        if manifest is not None:
            if args[0] in NO_ARTIFACT_COMMANDS and "--write-json" not in args:
                args.append("--no-write-json")
            log.info("dbt runs on the project as the warm-up parsed it (unchanged since): %s", " ".join(args))
        return dbtRunner(manifest=manifest, callbacks=self.callbacks).invoke(args, **kwargs)


def _share_parsed_project(settings: Settings, manifest: Any) -> None:
    """Keep the warm-up's parsed project for the task processes forked from this one (Cosmos runs each dbt
    command through ``cosmos.dbt.runner.get_runner``)."""
    global _PARSED
    import cosmos.dbt.runner

    # The environment of a dbt task: this process's, with the project's variables (Cosmos' env_vars).
    environ = {**os.environ, **dag_dbt_env(settings)}
    read = frozenset(manifest.env_vars)
    _PARSED = _Parsed(manifest, project_files(settings.dbt_project_dir), _parse_env(read, environ), read)
    cosmos.dbt.runner.get_runner = lambda callbacks=None: _SharedManifestRunner(settings, callbacks)


def warm_up(settings: Settings) -> bool:
    """Parse the project once in this process (``dbt parse`` into a scratch folder: nothing written to the
    project, the warehouse not opened), so that every task process forked from it later starts with dbt warm:
    its adapter registered, the project's macros compiled, and the parsed project at hand (``shared_manifest``).
    A failure only leaves the tasks starting dbt cold: logged, never raised.

    What a dbt task saves: docs/performance.md. The DAG's tasks are forked from the executor's process:
    the scheduler with ``sparkify.tuning.executor``'s LocalExecutor, or a Celery worker configured by
    ``sparkify.tuning.celery_config``.
    """
    import tempfile
    import time

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
