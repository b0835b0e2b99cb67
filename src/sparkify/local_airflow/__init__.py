"""A local Airflow (api-server, scheduler, dag-processor; LocalExecutor) with the project's own AIRFLOW_HOME.

Used by ``make demo``, ``make backfill`` and ``make airflow`` and by the end-to-end tests. Three parts: its
environment (``config``), its processes (``processes``) and its REST API (``api``), which everything uses as an
operator would.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from sparkify.local_airflow.api import DAG_ID, REPORT_DAG_ID, TERMINAL_RUN_STATES, AirflowApi
from sparkify.local_airflow.config import (
    ADMIN_USER,
    WARM_LOCAL_EXECUTOR,
    admin_password,
    airflow_env,
    airflow_home,
    free_port,
    port_in_use,
    shared_config,
    write_private,
)
from sparkify.local_airflow.processes import COMPONENTS, AirflowProcesses, AirflowStartError, airflow_cli
from sparkify.settings import Settings

__all__ = [
    "ADMIN_USER",
    "COMPONENTS",
    "DAG_ID",
    "REPORT_DAG_ID",
    "TERMINAL_RUN_STATES",
    "WARM_LOCAL_EXECUTOR",
    "AirflowStartError",
    "LocalAirflow",
    "admin_password",
    "airflow_cli",
    "airflow_env",
    "airflow_home",
    "free_port",
    "port_in_use",
    "running",
    "shared_config",
    "write_private",
]


@dataclass
class LocalAirflow(AirflowProcesses, AirflowApi):
    """The running components and a REST client logged in as the admin user."""

    settings: Settings
    home: Path
    port: int
    # Never in a repr: the environment holds credentials, the token is the admin's.
    env: dict[str, str] = field(repr=False)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)
    _token: str | None = field(default=None, repr=False)
    # Components started by the first create_backfill rather than at once.
    held: tuple[str, ...] = ()

    def create_backfill(self, start: str, end: str, max_active_runs: int) -> dict[str, Any]:
        # The report DAG too: the backfill's asset events then start its runs.
        self.unpause()
        # On the SQLite metadata database the API answers 503 ("Database is locked") while the scheduler writes:
        # a busy database, not an error; ask again. The refused attempt may have committed its backfill before
        # the lock hit (the next attempt then gets 409 "already a running backfill"): cancel it first.
        for attempt in range(1, 11):
            try:
                self.cancel_active_backfills()
                created = self._post_backfill(start, end, max_active_runs)
                break
            except httpx.HTTPStatusError as error:
                if error.response.status_code != 503 or attempt == 10:
                    raise
                time.sleep(attempt * 0.5)
        if self.held:
            self.start(self.held)
            self.held = ()
        return created


@contextmanager
def running(
    settings: Settings,
    port: int,
    home: Path | None = None,
    base_env: Mapping[str, str] | None = None,
    components: tuple[str, ...] | None = None,
    fresh: bool = False,
    scheduler_after_backfill: bool = False,
) -> Iterator[LocalAirflow]:
    """Start a local Airflow, wait until the DAG is parsed, and stop every process on the way out."""
    home = home or airflow_home(settings)
    if fresh and home.exists():
        shutil.rmtree(home)
    if port_in_use(port):
        raise AirflowStartError(
            f"port {port} is in use: stop what listens there or set SPARKIFY_AIRFLOW_PORT"
        )
    airflow = LocalAirflow(
        settings=settings, home=home, port=port, env=airflow_env(settings, home, port, base_env)
    )
    airflow.prepare()
    components = components or COMPONENTS
    if scheduler_after_backfill and "scheduler" in components:
        # On the SQLite metadata database, creating a backfill while the scheduler runs races with it (the API
        # answers 503 after committing half a backfill; the scheduler once died on a run changed under it):
        # the scheduler starts once the backfill is created.
        airflow.held = ("scheduler",)
        components = tuple(c for c in components if c != "scheduler")
    try:
        started = datetime.now(UTC)
        airflow.start(components)
        airflow.wait_ready(parsed_since=started if "dag-processor" in components else None)
        yield airflow
    finally:
        airflow.stop()
