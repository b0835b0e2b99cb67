"""A local Airflow (api-server, scheduler, dag-processor; LocalExecutor) with the project's own AIRFLOW_HOME.

Used by ``make demo``, ``make backfill`` and ``make airflow`` and by the end-to-end tests: processes are started
and stopped by PID, their logs go to ``$AIRFLOW_HOME/logs/<component>.log``, and everything talks to the
api-server's REST API as an operator would.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sparkify.dbt_docs import docs_projects_config
from sparkify.settings import Settings
from sparkify.warehouses import warehouse_for

DAG_ID = "sparkify_daily"
ADMIN_USER = "admin"
COMPONENTS = ("api-server", "scheduler", "dag-processor")
# The LocalExecutor with dbt warmed up before it forks task processes (src/sparkify/executor.py).
WARM_LOCAL_EXECUTOR = "sparkify.executor.WarmLocalExecutor"
TERMINAL_RUN_STATES = {"success", "failed"}


class AirflowStartError(RuntimeError):
    """A component did not come up; the message names its log file."""


def airflow_home(settings: Settings) -> Path:
    return Path(os.environ.get("AIRFLOW_HOME", settings.root / ".local" / "airflow"))


def write_private(path: Path, text: str) -> None:
    """Write a file that only its owner can read: created with mode 0600 (the umask can only narrow it), so it is
    never readable by others, not even until a chmod; an existing file is replaced whole, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as fh:
        fh.write(text)
    temporary.replace(path)


def _secret(path: Path) -> str:
    """A random value generated once per AIRFLOW_HOME and kept there (never in the repository)."""
    if not path.exists():
        write_private(path, secrets.token_urlsafe(24))
    return path.read_text().strip()


def airflow_env(
    settings: Settings, home: Path, port: int, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment every Airflow process of this project runs with."""
    env = dict(os.environ if base is None else base)
    passwords = home / "passwords.json"
    if not passwords.exists():
        write_private(passwords, json.dumps({ADMIN_USER: secrets.token_urlsafe(12)}))
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(settings.root / "airflow" / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": env.get("AIRFLOW__CORE__EXECUTOR", WARM_LOCAL_EXECUTOR),
            # Task processes at once. A day's dbt work is one build task beside ~27 node tasks of 0.2-0.5 s that
            # read its results: with 4 slots they queued behind each other after the build (a day 10.6-10.9 s
            # at scale 1), with 8 they do not (9.6-10.2 s); peak memory stays under 1 GiB.
            "AIRFLOW__CORE__PARALLELISM": env.get("AIRFLOW__CORE__PARALLELISM", "8"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
            "AIRFLOW__API__PORT": str(port),
            # Each local Airflow serves its task logs on its own port, so two of them can run side by side.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": env.get("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT")
            or str(free_port()),
            "AIRFLOW__API_AUTH__JWT_SECRET": _secret(home / ".jwt_secret"),
            "AIRFLOW__API__SECRET_KEY": _secret(home / ".api_secret_key"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # A day's run is ~30 tasks one after another: the scheduler's idle sleep (1 s by default) between
            # its loops is most of the gap between one task's end and the next one's start.
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": env.get(
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME", "0.2"
            ),
            # A task's supervisor waits for its process to exit in a select() of up to this many seconds (5 by
            # default); a process that closes its sockets before it exits was waited for that long, holding an
            # executor slot, and a deferred sensor's late exit report made the scheduler fail it once resumed.
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": env.get(
                "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL", "1"
            ),
            "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
            # Cosmos' watcher producer otherwise rewrites one Airflow Variable holding all its XComs at each of its
            # ~100 XCom pushes (a backup for a producer killed outright): 2.5 s of a day's 7 s build. Without it the
            # backup is written once, when the producer fails; a sensor with no result runs its own node.
            "AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY": env.get(
                "AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY", "False"
            ),
            # Cosmos keeps dbt's partial-parse cache here: one per Airflow home, so two homes never share it.
            "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
            "AIRFLOW__COSMOS__DBT_DOCS_PROJECTS": docs_projects_config(settings),
            "DO_NOT_TRACK": "1",
            "SCARF_ANALYTICS": "false",
        }
    )
    env.update({key: value for key, value in settings.dbt_env().items() if key not in env})
    return env


def admin_password(home: Path) -> str:
    return json.loads((home / "passwords.json").read_text())[ADMIN_USER]


def airflow_cli(env: Mapping[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    airflow = str(Path(sys.executable).with_name("airflow"))
    return subprocess.run([airflow, *args], env=dict(env), capture_output=True, text=True, check=check)


@dataclass
class LocalAirflow:
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

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def log_file(self, component: str) -> Path:
        return self.home / "logs" / f"{component}.log"

    def prepare(self) -> None:
        """Migrate the metadata database and create the warehouse's writer pool, if it has one."""
        airflow_cli(self.env, "db", "migrate")
        if pool := warehouse_for(self.settings).writer_pool:
            airflow_cli(self.env, "pools", "set", pool, "1", "The warehouse allows one writing process")

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
        """SIGTERM every component's process group, then SIGKILL what is left after ``timeout``, task processes
        included: Airflow starts each in a process group of its own, which a hung task never leaves."""
        descendants = _descendants([process.pid for process in self.processes.values()])
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
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

    def wait_until(
        self,
        what: str,
        probe: Any,
        timeout: float,
        interval: float = 1.0,
        describe: Callable[[], str] | None = None,
    ) -> Any:
        """Poll ``probe`` until it returns something truthy; on timeout the error carries ``describe()`` (the
        state that was waited on), so a failure in CI explains itself."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                result = probe()
            except httpx.HTTPError:
                result = None
            if result:
                return result
            time.sleep(interval)
        state = ""
        if describe is not None:
            try:
                state = f"\n{describe()}"
            except Exception as error:
                state = f"\n(state unavailable: {error})"
        raise AirflowStartError(
            f"timed out after {timeout:.0f}s waiting for {what}; logs in {self.home / 'logs'}{state}"
        )

    def _login(self) -> str:
        response = httpx.post(
            f"{self.url}/auth/token",
            json={"username": ADMIN_USER, "password": admin_password(self.home)},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._token is None:
            self._token = self._login()
        headers = {"Authorization": f"Bearer {self._token}", **kwargs.pop("headers", {})}
        response = httpx.request(
            method,
            f"{self.url}/api/v2{path}",
            headers=headers,
            timeout=30,
            **kwargs,
        )
        if response.status_code >= 400:
            raise httpx.HTTPStatusError(
                f"{method} {path}: {response.status_code} {response.text[:500]}",
                request=response.request,
                response=response,
            )
        return response.json() if response.content else None

    def wait_ready(self, timeout: float = 180) -> None:
        """Until the api-server answers and the dag-processor has serialized the DAG."""
        self.wait_until(
            "the api-server",
            lambda: httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).is_success,
            timeout,
        )
        self.wait_until(f"DAG {DAG_ID} to be parsed", lambda: self._dag_parsed(), timeout)

    def _dag_parsed(self) -> bool:
        try:
            self.api("GET", f"/dags/{DAG_ID}/details")
        except httpx.HTTPStatusError as error:
            if error.response.status_code == 404:
                errors = self.api("GET", "/importErrors")
                if errors.get("import_errors"):
                    raise AirflowStartError(
                        "the DAG folder has import errors:\n"
                        + "\n".join(e["filename"] + ": " + e["stack_trace"] for e in errors["import_errors"])
                    ) from error
                return False
            raise
        return True

    def cancel_active_backfills(self) -> list[int]:
        """Cancel backfills left active by an interrupted command (Airflow allows one active backfill per DAG)."""
        listing = self.api("GET", "/backfills", params={"dag_id": DAG_ID, "limit": 1000})
        cancelled = []
        for backfill in listing["backfills"]:
            if backfill["completed_at"] is None:
                self.api("PUT", f"/backfills/{backfill['id']}/cancel")
                cancelled.append(backfill["id"])
        return cancelled

    def abandon_backfill(self, backfill_id: int, start: str, end: str) -> list[str]:
        """Before stopping mid-backfill: cancel the backfill and mark its unfinished runs failed (Airflow stops
        their tasks), so that nothing is left running in the metadata database for the next start to find as a
        task that died, and wait out a retry for. The next backfill of those days reruns them. The days of the
        runs marked failed."""
        self.while_busy(lambda: self.api("PUT", f"/backfills/{backfill_id}/cancel"))
        marked = []
        for run in self.while_busy(lambda: self.runs(start, end)):
            if run["state"] in {"queued", "running"}:
                path = f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}"
                self.while_busy(lambda path=path: self.api("PATCH", path, json={"state": "failed"}))
                marked.append(run["logical_date"][:10])
        return marked

    @staticmethod
    def while_busy(request: Callable[[], Any], attempts: int = 10) -> Any:
        """``request()``, made again while the metadata database is busy: on SQLite the API answers 500 or 503
        while the scheduler holds its lock, which is no fault of the request."""
        for attempt in range(1, attempts + 1):
            try:
                return request()
            except httpx.HTTPStatusError as error:
                if error.response.status_code not in {500, 503} or attempt == attempts:
                    raise
                time.sleep(attempt * 0.5)
        return None

    def wait_backfill_completed(self, backfill_id: int, timeout: float = 45) -> bool:
        """Wait for the scheduler to mark a finished backfill complete (it checks every 30 s, hard-coded). One
        stopped before that is still active at the next start, which cancels it, and cancelling pauses it:
        Airflow never starts a run of a paused backfill again, so clearing one of its runs in the UI would leave
        the run queued for good. False if the scheduler has not marked it within ``timeout``."""
        try:
            self.wait_until(
                "the scheduler to mark the backfill complete",
                lambda: self.api("GET", f"/backfills/{backfill_id}")["completed_at"],
                timeout=timeout,
            )
        except AirflowStartError:
            self.check_alive()  # a component that died is its own error, not a backfill left unmarked
            return False
        return True

    def create_backfill(self, start: str, end: str, max_active_runs: int) -> dict[str, Any]:
        self.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
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

    def _post_backfill(self, start: str, end: str, max_active_runs: int) -> dict[str, Any]:
        return self.api(
            "POST",
            "/backfills",
            json={
                "dag_id": DAG_ID,
                "from_date": f"{start}T00:00:00Z",
                "to_date": f"{end}T00:00:00Z",
                "max_active_runs": max_active_runs,
                "reprocess_behavior": "completed",
                "run_backwards": False,
                "dag_run_conf": {},
            },
        )

    def runs(self, start: str, end: str) -> list[dict[str, Any]]:
        response = self.api(
            "GET",
            f"/dags/{DAG_ID}/dagRuns",
            params={
                "logical_date_gte": f"{start}T00:00:00Z",
                "logical_date_lte": f"{end}T00:00:00Z",
                "limit": 1000,
                "order_by": "logical_date",
            },
        )
        # A rerun of a day replaces its run; keep the latest run per day.
        latest: dict[str, dict[str, Any]] = {}
        for run in response["dag_runs"]:
            day = run["logical_date"][:10]
            if day not in latest or (run["queued_at"] or "") >= (latest[day]["queued_at"] or ""):
                latest[day] = run
        return [latest[day] for day in sorted(latest)]

    def task_instances(self, run_id: str) -> list[dict[str, Any]]:
        response = self.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
        return response["task_instances"]

    def finished_runs(self, start: str, end: str, expected: int) -> list[dict[str, Any]] | None:
        """The runs of [start, end] once there are ``expected`` of them and all have finished, else None."""
        runs = self.runs(start, end)
        if len(runs) == expected and all(run["state"] in TERMINAL_RUN_STATES for run in runs):
            return runs
        return None

    def describe_runs(self, start: str, end: str) -> str:
        """Each run's state and its unfinished or failed task instances (state, try, host), for timeouts."""
        lines = []
        for run in self.runs(start, end):
            lines.append(f"{run['dag_run_id']}: {run['state']}")
            for ti in self.task_instances(run["dag_run_id"]):
                if ti["state"] not in {"success", "skipped"}:
                    lines.append(
                        f"  {ti['task_id']}: {ti['state']} try {ti['try_number']} on {ti['hostname'] or '-'}"
                        f" (queued {ti['queued_when'] or '-'}, started {ti['start_date'] or '-'})"
                    )
        return "\n".join(lines) or "no run"


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


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


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
        airflow.start(components)
        airflow.wait_ready()
        yield airflow
    finally:
        airflow.stop()
