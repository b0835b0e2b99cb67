"""The warehouses the pipeline runs on: each is one module of this package, with one class implementing
``Warehouse``, and ``warehouse_for`` is the only place that picks one (from ``SPARKIFY_WAREHOUSE``).

The DAG, the CLI, the summary and the dbt glue ask the configured warehouse; none of them compares its name.
Adding a warehouse means a module here (its class and ``WAREHOUSE = <class>``), its name in
``sparkify.settings.WAREHOUSES`` (with its reserved words), its dbt target (in profiles.yml, or a Cosmos profile mapping from ``profile_config``) and a test file.

``make sql`` runs one query and nothing else, on every warehouse: the query is run as
``select * from (<query>) as sparkify_sql`` (``one_query``). Each database parses the whole text before running
any of it, so a second statement, a statement that is not a query (COPY, ATTACH, SET, DDL, DML) or a
data-modifying WITH fails to parse and nothing runs. Each warehouse then adds its own lock (read-only file, or
a login that can only read).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from datetime import date
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

from sparkify.settings import WAREHOUSES, Settings

if TYPE_CHECKING:
    from cosmos import ProfileConfig

MODULES = {name: f"sparkify.warehouses.{name}" for name in WAREHOUSES}
NAMES = WAREHOUSES
# The schemas dbt builds, besides the landing schema: what the read-only login of `make sql` may read.
DBT_SCHEMAS = ("analytics", "analytics_staging", "analytics_intermediate")
PROFILE_NAME = "sparkify"

Rows = tuple[list[str], list[tuple[object, ...]]]


class QueryError(ValueError):
    """`make sql` was given something other than one query."""


def one_query(sql: str) -> str:
    """``sql`` as the only query of a statement (see the module's doc); a comment may end it."""
    body = sql.strip()
    while body.endswith(";"):
        body = body[:-1].rstrip()
    if not body:
        raise QueryError('no query given: make sql Q="select ..."')
    return f"select * from (\n{body}\n) as sparkify_sql"


def query_rows(cur: Any, sql: str) -> Rows:
    cur.execute(one_query(sql))
    return [column[0] for column in cur.description], [tuple(row) for row in cur.fetchall()]


def refused(error: Exception) -> QueryError:
    return QueryError(
        "make sql runs one query (SELECT, WITH ... SELECT, VALUES) that reads the warehouse: "
        + str(error).strip().splitlines()[0]
    )


class Warehouse(ABC):
    """What the pipeline needs from a warehouse. One instance per settings (``warehouse_for``)."""

    name: ClassVar[str]
    # The type of a text column in the tables the project creates itself (staging, quarantine, audit).
    text_type: ClassVar[str] = "varchar"
    # Why dbt cannot be warmed up in a parent process for its task processes (``sparkify.tuning.dbt_parse.warm_up``), if so.
    cold_dbt_reason: ClassVar[str | None] = None
    # Whether the dbt docs may be kept while the catalog's tables and columns are unchanged
    # (``sparkify.dbt_run.generate_docs``).
    stable_catalog: ClassVar[bool] = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def check(self) -> None:
        """Refuse settings this warehouse cannot run with, before the first query (``warehouse_for``)."""
        return None

    @abstractmethod
    def describe(self) -> str:
        """Where the data lives, for a person (``make backfill``'s report)."""

    def prepare(self) -> None:
        """What the warehouse needs before the first load (a database created, for example)."""
        return None

    @property
    def writer_pool(self) -> str | None:
        """The Airflow pool every writing task takes, when the warehouse allows only so many writers."""
        return None

    def task_args(self) -> dict[str, object]:
        """The DAG's default task arguments that this warehouse sets."""
        return {"pool": self.writer_pool} if self.writer_pool else {}

    @abstractmethod
    def cursor(self, read_only: bool = True) -> AbstractContextManager[Any]:
        """A DB-API cursor (execute, fetch*) in autocommit, as the warehouse's own login."""

    @abstractmethod
    def read_only_query(self, sql: str) -> Rows:
        """Run one query that can change nothing (see the module's doc): column names and rows. Raises
        ``QueryError`` when it is not one query."""

    def profile_config(self) -> ProfileConfig:
        """The dbt profile of the DAG's dbt tasks: the warehouse's target in the project's profiles.yml."""
        from cosmos import ProfileConfig

        return ProfileConfig(
            profile_name=PROFILE_NAME,
            target_name=self.settings.dbt_target,
            profiles_yml_filepath=self.settings.dbt_profiles_dir / "profiles.yml",
        )

    def stage_events(self, day: date, key: str | None = None) -> dict[str, object]:
        """Replace the day's rows of ``staging_events`` with the day's log file (``key``: its path in the
        lake), in this process: what the staging task does. Counts as ``StageResult`` fields."""
        raise NotImplementedError(f"{self.name}: the day's events are staged by the DAG's tasks only")

    def stage_songs(self) -> dict[str, object]:
        """Replace ``staging_songs`` with every song file in the lake, in this process."""
        raise NotImplementedError(f"{self.name}: the songs are staged by the DAG's tasks only")

    @property
    def staging_parallelism(self) -> int:
        """How many days of a run load at once: one where the warehouse takes one writer."""
        return 1 if self.writer_pool else self.settings.staging_parallelism

    def staging_tasks(self, batches: Any) -> list[Any]:
        """The DAG's staging step (call inside a DAG): ``stage_events`` mapped over the run's ``batches`` of days
        (lists of ISO dates, an upstream task's output), one task instance per batch named by its days, and
        ``stage_songs``, as tasks (or task groups) that dbt runs after. Bad input over the allowance and a missing
        day file fail their day's task at once, not retried (``alerts.no_retry``); the other days' loads stand."""
        from airflow.sdk import get_current_context, task

        from sparkify.alerts import no_retry
        from sparkify.run_days import label

        @task(
            task_id="stage_events",
            map_index_template="{{ days_label }}",
            max_active_tis_per_dagrun=self.staging_parallelism,
        )
        def stage_events(days: list[str]) -> dict[str, object]:
            get_current_context()["days_label"] = label(days)  # type: ignore[typeddict-unknown-key]
            return each_day(days, lambda day: self.stage_events(date.fromisoformat(day)))

        @task(task_id="stage_songs")
        def stage_songs() -> dict[str, object]:
            with no_retry():
                return self.stage_songs()

        return [stage_events.expand(days=batches), stage_songs()]


def each_day(days: list[str], stage: Any) -> Any:
    """``stage(day)`` for each of ``days`` in order, each day's load its own: a day that fails on bad input or a
    missing file (not retried: waiting cannot fix it) does not stop the others, and the task then fails naming
    it. A failure that waiting can fix stops at once: the retry stages the days again (each load replaces its
    day). One day's result, or each day's."""
    from airflow.sdk.exceptions import AirflowFailException

    from sparkify.alerts import no_retry

    results: dict[str, object] = {}
    failed: list[tuple[str, AirflowFailException]] = []
    for day in days:
        try:
            with no_retry():
                results[day] = stage(day)
        except AirflowFailException as error:
            if len(days) == 1:
                raise
            failed.append((day, error))
    if failed:
        raise AirflowFailException(
            f"{len(failed)} of {len(days)} days failed, the others loaded: "
            + "; ".join(f"{day}: {error}" for day, error in failed)
        ) from failed[0][1]
    return results[days[0]] if len(days) == 1 else results


@cache
def warehouse_for(settings: Settings) -> Warehouse:
    """The configured warehouse: the one place that picks a warehouse by its name. It checks the settings it
    is given (``Warehouse.check``) before anything uses it."""
    module = importlib.import_module(MODULES[settings.warehouse])
    warehouse = module.WAREHOUSE(settings)
    warehouse.check()
    return warehouse
