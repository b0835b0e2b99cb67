"""The processes of a local Airflow: started with the project's environment, their logs in
``$AIRFLOW_HOME/logs/<component>.log``, stopped by process group with every task process they started."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sparkify.local_airflow.config import free_port
from sparkify.warehouses import warehouse_for

COMPONENTS = ("api-server", "scheduler", "dag-processor")


class AirflowStartError(RuntimeError):
    """A component did not come up; the message names its log file."""


def airflow_cli(env: Mapping[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    airflow = str(Path(sys.executable).with_name("airflow"))
    return subprocess.run([airflow, *args], env=dict(env), capture_output=True, text=True, check=check)


class AirflowProcesses:
    """Starting, watching and stopping the components (attributes of ``LocalAirflow``: settings, home, port,
    env, processes)."""

    def log_file(self, component: str) -> Path:
        return self.home / "logs" / f"{component}.log"

    def prepare(self) -> None:
        """Migrate the metadata database and create the warehouse's writer pool, if it has one. A new home's
        SQLite database starts as a copy of one this Airflow version prepared before with the same pool (kept in
        ``.local/cache``): preparing an empty one costs two Airflow processes, seconds of CPU, at every new home."""
        database = self.home / "airflow.db"
        uses_sqlite_here = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in self.env
        template = self._prepared_database()
        fresh = uses_sqlite_here and not database.exists()
        if fresh and template.is_file():
            shutil.copyfile(template, database)
            return
        airflow_cli(self.env, "db", "migrate")
        if pool := warehouse_for(self.settings).writer_pool:
            airflow_cli(self.env, "pools", "set", pool, "1", "The warehouse allows one writing process")
        if fresh and not template.is_file():
            template.parent.mkdir(parents=True, exist_ok=True)
            partial = template.with_suffix(f".{os.getpid()}.partial")
            shutil.copyfile(database, partial)
            partial.replace(template)  # whole or not at all, when two homes are prepared at once

    def _prepared_database(self) -> Path:
        from importlib.metadata import version

        pool = warehouse_for(self.settings).writer_pool or "no-pool"
        return self.settings.root / ".local" / "cache" / f"airflow-{version('apache-airflow')}-{pool}.db"

    def start(self, components: tuple[str, ...] = COMPONENTS) -> None:
        airflow = str(Path(sys.executable).with_name("airflow"))
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        for component in components:
            args = [airflow, component]
            if component == "api-server":
                args += ["--port", str(self.port), "--host", "127.0.0.1", "--workers", "1"]
            with self.log_file(component).open("ab") as log:
                self.processes[component] = subprocess.Popen(
                    args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )

    def start_worker(self, name: str, queue: str, concurrency: int = 2) -> None:
        """A Celery worker (CeleryExecutor), with its own name and task-log server port."""
        airflow = str(Path(sys.executable).with_name("airflow"))
        env = {
            **self.env,
            "SPARKIFY_WORKER_NAME": name,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "sparkify.hostname.worker_hostname",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        }
        args = [airflow, "celery", "worker", "--celery-hostname", f"{name}@%h"]
        args += ["--queues", queue, "--concurrency", str(concurrency), "--without-gossip", "--without-mingle"]
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        with self.log_file(f"worker-{name}").open("ab") as log:
            self.processes[f"worker-{name}"] = subprocess.Popen(
                args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def kill(self, component: str) -> None:
        """SIGKILL a component and every process it started (a machine or container lost, not a shutdown)."""
        process = self.processes.pop(component)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM the components that run tasks (the scheduler with its executor, Celery workers), then the
        others once those have exited; SIGKILL what is left of each after ``timeout``, task processes included:
        Airflow starts each in a process group of its own, which a hung task never leaves.

        The order matters: a task stopped by the signal reports its end through the api-server. With the
        api-server gone first, its supervisor retried for half a minute, the scheduler waited for it until the
        SIGKILL, and the task stayed *running* in the metadata database, which the next start left alone until
        its orphan check, five minutes later."""
        descendants = _descendants([process.pid for process in self.processes.values()])
        deadline = time.monotonic() + timeout
        running_tasks = {name for name in self.processes if name == "scheduler" or name.startswith("worker-")}
        for names in (running_tasks, set(self.processes) - running_tasks):
            group = [self.processes[name] for name in sorted(names)]
            for process in group:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            for process in group:
                try:
                    process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        self.processes.clear()
        _kill_survivors(descendants, max(0.1, deadline - time.monotonic()))

    def check_alive(self) -> None:
        """Raise if a component has exited (a dead scheduler never finishes a run)."""
        for component, process in self.processes.items():
            if process.poll() is not None:
                raise AirflowStartError(
                    f"airflow {component} exited with code {process.returncode}; see {self.log_file(component)}"
                )


def _descendants(pids: list[int]) -> list[Any]:
    """Every live process started, directly or not, by the given ones."""
    import psutil

    found = []
    for pid in pids:
        try:
            found.extend(psutil.Process(pid).children(recursive=True))
        except psutil.Error:
            continue
    return found


def _kill_survivors(processes: list[Any], timeout: float) -> None:
    """SIGKILL those of ``processes`` still alive after ``timeout``."""
    import psutil

    _, alive = psutil.wait_procs(processes, timeout=timeout)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            continue
    psutil.wait_procs(alive, timeout=5)
