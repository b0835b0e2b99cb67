"""Every deviation from stock Cosmos, Airflow and dbt, in one package, each written for known versions.

The pipeline is correct on stock libraries; these patches make a day's run of many small dbt nodes fast (what
each buys, measured: docs/performance.md). They are applied through two calls: ``tune_task_group`` when the DAG
is built, and ``warm`` in the process that forks the task processes (the project's executor, or a Celery
worker). Both do nothing, and the pipeline runs on stock behaviour, when ``SPARKIFY_TUNING=off`` or when an
installed library is outside the versions a patch was written for, which is logged once as a warning:

- Cosmos' watcher through its public arguments only (``sparkify.dbt.WATCHER_OPERATOR_ARGS``: poking sensors,
  outside the writer pool), without the lean XComs, the rebuild after a clear or the detached tests' results
  (their sensors then run their test themselves);
- stock executors: the executor and the Celery hook start no warm-up, so every dbt task starts cold, and the
  scheduler marks a finished backfill complete at its own 30-s check;
- no shared parse: every dbt task loads the project itself.

``tests/test_tuning.py`` imports every private name the patches touch (``PRIVATE_NAMES``) and checks its
signature: an upgrade fails that test, naming the patch, before anything runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sparkify.settings import Settings

log = logging.getLogger(__name__)

COSMOS = {"astronomer-cosmos": ">=1.15,<1.16"}
AIRFLOW = {"apache-airflow-core": ">=3.3,<3.4"}
DBT = {"dbt-core": ">=1.11,<1.12"}


@dataclass(frozen=True)
class Patch:
    name: str
    module: str
    # Distribution -> the versions the patch was written for (a PEP 440 specifier).
    written_for: dict[str, str]
    # The private names it relies on: "module:qualified.name" -> the parameters expected, in order.
    private_names: dict[str, tuple[str, ...]] = field(default_factory=dict)


PATCHES = (
    Patch(
        "watcher",
        "sparkify.tuning.watcher",
        {**COSMOS, **AIRFLOW},
        {
            "cosmos.operators._watcher.base:BaseConsumerSensor": (),
            "cosmos.operators._watcher.base:BaseConsumerSensor.poke": ("self", "context"),
            "cosmos.operators._watcher.base:BaseConsumerSensor._get_producer_task_status": (
                "self",
                "context",
            ),
            "cosmos.operators._watcher.base:BaseConsumerSensor._fallback_to_non_watcher_run": (
                "self",
                "try_number",
                "context",
            ),
            "cosmos.operators._watcher.base:BaseConsumerSensor._handle_retry": (
                "self",
                "try_number",
                "producer_task_state",
                "context",
            ),
            "cosmos.operators._watcher.state:is_producer_task_terminated": ("state",),
            "cosmos.operators.watcher:DbtProducerWatcherOperator._make_parse_callable": ("self",),
            "cosmos.operators.watcher:DbtProducerWatcherOperator.execute": ("self", "context", "kwargs"),
        },
    ),
    Patch(
        "dbt-parse",
        "sparkify.tuning.dbt_parse",
        {**COSMOS, **DBT},
        {
            "cosmos.dbt.runner:get_runner": ("callbacks",),
            "dbt.cli.main:dbtRunner.__init__": ("self", "manifest", "callbacks"),
        },
    ),
    Patch(
        "manifest-path",
        "sparkify.dbt",
        COSMOS,
    ),
    Patch(
        "warm-executor",
        "sparkify.tuning.executor",
        AIRFLOW,
        {"airflow.executors.local_executor:LocalExecutor.start": ("self",)},
    ),
    Patch(
        "backfill-check",
        "sparkify.tuning.executor",
        AIRFLOW,
        {
            "airflow.utils.event_scheduler:EventScheduler.call_regular_interval": (
                "self",
                "delay",
                "action",
                "arguments",
                "kwargs",
                "non_fatal",
            ),
            "airflow.jobs.scheduler_job_runner:SchedulerJobRunner._mark_backfills_complete": (
                "self",
                "session",
            ),
        },
    ),
)


def installed(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def mismatches(patch: Patch) -> list[str]:
    """The libraries installed outside the versions ``patch`` was written for: "<name> <found> (not <spec>)"."""
    from packaging.specifiers import SpecifierSet

    found = []
    for distribution, spec in patch.written_for.items():
        current = installed(distribution)
        if current is None or current not in SpecifierSet(spec):
            found.append(f"{distribution} {current or 'missing'} (written for {spec})")
    return found


@cache
def _versions_match() -> bool:
    found = sorted({mismatch for patch in PATCHES for mismatch in mismatches(patch)})
    if found:
        log.warning(
            "sparkify.tuning is off: %s; the pipeline runs on stock Cosmos, Airflow and dbt behaviour (correct, "
            "slower: docs/performance.md). Check the patches against these versions to turn it back on.",
            "; ".join(found),
        )
    return not found


def active(enabled: bool = True) -> bool:
    """Whether the patches apply in this process: all or none, so that no mix of patched and stock parts runs.
    ``enabled``: the ``SPARKIFY_TUNING`` setting. A version outside a patch's range is one warning a process."""
    if not enabled:
        log.info("sparkify.tuning is off (SPARKIFY_TUNING=off): stock Cosmos, Airflow and dbt behaviour")
        return False
    return _versions_match()


def _tasks(group: Any) -> Iterator[Any]:
    """Every task of a task group, nested groups (a model's run and test) included."""
    for child in group.children.values():
        if hasattr(child, "children"):
            yield from _tasks(child)
        else:
            yield child


def tune_task_group(group: Any, settings: Settings) -> bool:
    """The watcher patch on the DAG's dbt task group (``sparkify.tuning.watcher``), once Cosmos has rendered it."""
    if settings.dbt_execution != "watcher" or not active(settings.tuning):
        return False
    from sparkify.tuning.watcher import tune

    tune(_tasks(group))
    return True


def local_manifest(project_config: Any, manifest: Path, settings: Settings) -> None:
    """Cosmos wraps the manifest's path in Airflow's ObjectStoragePath, whose first use imports every provider's
    filesystem at each parse, in every task process (docs/performance.md). The manifest is a local file: read
    as one."""
    if active(settings.tuning):
        project_config.manifest_path = manifest
