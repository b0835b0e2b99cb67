"""docker-compose.yaml, started for real (`make stack-test`; docker/ci/build-images builds the images first).

The user's compose file runs, with docker/docker-compose.ci.yaml swapping in the locally built images and moto for
MinIO. Once every service is healthy, a three-day backfill is created through the REST API, logged in through the
FAB auth manager. A Celery worker container is killed (`docker kill`) while it runs a dbt task; its task must run
again on the other worker, every run must succeed, and the marts must be identical to those of the DuckDB pipeline
on the same lake. `docker-compose down -v` removes everything afterwards.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from sparkify.datagen import generate
from sparkify.dbt_docs import DOCS_PATH
from sparkify.local_airflow import DAG_ID, AirflowApi
from sparkify.settings import from_env
from sparkify.warehouses import warehouse_for
from tests.conftest import MARTS, REPO, build_day_by_day, fingerprints, read_events

pytestmark = [pytest.mark.stack, pytest.mark.timeout(2400)]

PROJECT = "sparkify-stack-test"
DAYS = ("2018-11-01", "2018-11-02", "2018-11-03")
# The lake service's sample lake (docker-compose.yaml): generated again here for the DuckDB reference.
LAKE_SEED, LAKE_SCALE = 42, 1
ONE_SHOT = ("airflow-init", "lake")


def compose(*args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    command = [
        "docker-compose",
        "-p",
        PROJECT,
        "-f",
        "docker-compose.yaml",
        "-f",
        "docker/docker-compose.ci.yaml",
    ]
    result = subprocess.run(
        [*command, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker-compose {' '.join(args)}: {result.returncode}\n{result.stderr[-4000:]}")
    return result


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=120).stdout


def env_file() -> dict[str, str]:
    lines = (REPO / ".env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def containers() -> dict[str, dict[str, Any]]:
    """Each container of the project by name (sparkify-stack-test_airflow-worker_1), as docker inspect sees it."""
    ids = compose("ps", "-q").stdout.split()
    return {info["Name"].lstrip("/"): info for info in json.loads(docker("inspect", *ids))} if ids else {}


def unhealthy() -> list[str]:
    """The containers not yet ready: a long-running one not healthy, a one-shot not exited 0."""
    waiting = []
    for name, info in containers().items():
        state = info["State"]
        if any(f"_{service}_" in name for service in ONE_SHOT):
            if state["Status"] != "exited" or state["ExitCode"] != 0:
                waiting.append(f"{name}: {state['Status']} (exit {state['ExitCode']})")
        elif state.get("Health", {}).get("Status") != "healthy":
            waiting.append(f"{name}: {state.get('Health', {}).get('Status', state['Status'])}")
    return waiting


@dataclass
class StackApi(AirflowApi):
    """The stack's REST API on the published port, logged in as the admin of .env."""

    password: str
    home: Path
    port: int = 8080
    _token: str | None = field(default=None, repr=False)

    def _login(self) -> str:
        response = httpx.post(
            f"{self.url}/auth/token", json={"username": "admin", "password": self.password}, timeout=10
        )
        response.raise_for_status()
        return response.json()["access_token"]


def readme_commands() -> dict[str, Any]:
    """The lines of README's "Run the full stack", continuations joined and comments dropped: `make stack-env`,
    `docker compose up`, the REST calls that start the backfill, `docker compose down`."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Run the full stack") :]
    start = section.index("```bash\n") + len("```bash\n")
    block = section[start : section.index("\n```", start)]
    commands = [
        re.sub(r"\s+#\s.*$", "", command).strip()
        for command in re.sub(r"\\\n\s*", " ", block).splitlines()
        if command.strip()
    ]
    setup, up, *calls, down = commands
    assert setup == "make stack-env", setup
    # Compose v2's `docker compose` for users; here Debian's docker-compose v1.29, which reads the same file.
    assert up.startswith("docker compose up") and down.startswith("docker compose down"), (up, down)
    return {"setup": setup, "up": up.split()[2:], "calls": "\n".join(calls), "down": down.split()[2:]}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    assert shutil.which("docker-compose"), "docker-compose is missing: run make stack-test"
    readme = readme_commands()
    subprocess.run(readme["setup"].split(), cwd=REPO, check=True, capture_output=True, timeout=600)
    values = env_file()
    compose(*stack_down(readme), check=False)
    started = time.monotonic()
    try:
        # The images are built already (docker/ci/build-images): the only other difference from README's line.
        compose(*["--no-build" if arg == "--build" else arg for arg in readme["up"]])
        deadline = time.monotonic() + 600
        while (waiting := unhealthy()) and time.monotonic() < deadline:
            time.sleep(3)
        assert not waiting, (
            f"not healthy after 600 s: {waiting}\n{compose('logs', '--tail=40').stdout[-6000:]}"
        )
        print(f"stack healthy in {time.monotonic() - started:.0f} s")
        api = StackApi(password=values["AIRFLOW_ADMIN_PASSWORD"], home=tmp_path_factory.mktemp("stack"))
        api.wait_until("the DAG to be parsed", api._dag_parsed, timeout=300)
        yield {"api": api, "values": values, "readme": readme}
    finally:
        logs = compose("logs", "--no-color", check=False).stdout
        (REPO / "logs").mkdir(exist_ok=True)
        (REPO / "logs" / "stack-test.log").write_text(logs)
        compose(*stack_down(readme), check=False)


def stack_down(readme: dict[str, Any]) -> list[str]:
    return [*readme["down"], "--remove-orphans"]


def worker_container(hostname: str) -> str:
    """The worker container whose hostname (what Airflow records for a task) is ``hostname``."""
    for name, info in containers().items():
        if "_airflow-worker_" in name and info["Config"]["Hostname"] == hostname:
            return name
    raise AssertionError(f"no worker container has hostname {hostname}")


@pytest.fixture(scope="module")
def backfilled(stack):
    api = stack["api"]
    started = time.monotonic()
    # README's REST calls, run as a user runs them: unpause the DAG, create the backfill.
    calls = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", stack["readme"]["calls"]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert calls.returncode == 0, calls.stderr
    created = json.loads(calls.stdout[calls.stdout.rindex('{"id"') :])
    assert (created["from_date"][:10], created["to_date"][:10], created["max_active_runs"]) == (
        DAYS[0],
        DAYS[-1],
        1,
    )
    assert api.api("GET", f"/dags/{DAG_ID}")["is_paused"] is False

    def caught_running():
        """A dbt model or test task of the first day, running on a worker whose container is frozen (docker pause)
        while the task still runs, so the kill lands mid-task."""
        listing = api.api(
            "GET", f"/dags/{DAG_ID}/dagRuns/~/taskInstances", params={"state": "running", "limit": 100}
        )
        for ti in listing["task_instances"]:
            if (
                not ti["task_id"].startswith("dbt_sparkify.")
                or ti["task_id"] == "dbt_sparkify.dbt_producer_watcher"
            ):
                continue
            if not (ti.get("logical_date") or "").startswith(DAYS[0]) or not ti["hostname"]:
                continue
            container = worker_container(ti["hostname"])
            docker("pause", container)
            path = f"/dags/{DAG_ID}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}"
            if api.api("GET", path)["state"] == "running":
                return {**ti, "container": container}
            docker("unpause", container)
        if api.finished_runs(DAYS[0], DAYS[0], 1):
            raise AssertionError(
                "the first run finished before a dbt task could be caught running on a worker"
            )
        return None

    victim = api.wait_until("a dbt task running on a worker", caught_running, timeout=600, interval=0.5)
    # Kept down until its task has moved (as if its machine were gone): restart: always would bring it back at
    # once, and the retry could land on it again.
    docker("update", "--restart=no", victim["container"])
    docker("kill", victim["container"])
    killed = docker(
        "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", victim["container"]
    ).split()

    api.wait_until(
        "the killed worker's task retried on the other worker",
        lambda: api.moved_elsewhere(victim),
        timeout=600,
    )
    docker("update", "--restart=always", victim["container"])
    docker("start", victim["container"])
    runs = api.wait_runs_finished(DAYS[0], DAYS[-1], len(DAYS), timeout=1200)
    print(f"backfill of {len(DAYS)} days in {time.monotonic() - started:.0f} s")
    tasks = {run["logical_date"][:10]: api.task_instances(run["dag_run_id"]) for run in runs}
    return {"runs": runs, "tasks": tasks, "victim": victim, "killed": killed}


@pytest.fixture(scope="module")
def warehouse_settings(stack):
    """The stack's warehouse as the host reaches it: the published port, the pipeline's own login."""
    return from_env(
        {
            "SPARKIFY_WAREHOUSE": "postgres",
            "SPARKIFY_PG_HOST": "127.0.0.1",
            "SPARKIFY_PG_PORT": "5433",
            "SPARKIFY_PG_USER": "sparkify",
            "SPARKIFY_PG_PASSWORD": stack["values"]["WAREHOUSE_PASSWORD"],
            "SPARKIFY_PG_DATABASE": "sparkify",
        }
    )


def test_every_run_succeeds_and_both_workers_worked(backfilled):
    assert [run["state"] for run in backfilled["runs"]] == ["success"] * len(DAYS), backfilled["runs"]
    hosts = {
        ti["hostname"]
        for tis in backfilled["tasks"].values()
        for ti in tis
        if ti["operator"] != "EmptyOperator"
    }
    assert len(hosts) == 2, hosts


def test_the_killed_task_ran_again_on_the_other_worker(backfilled):
    victim = backfilled["victim"]
    assert backfilled["killed"] == ["exited", "137"], "docker kill did not kill the worker"
    [ti] = [
        ti
        for ti in backfilled["tasks"][DAYS[0]]
        if ti["task_id"] == victim["task_id"] and ti["dag_run_id"] == victim["dag_run_id"]
    ]
    assert (ti["state"], ti["try_number"] > victim["try_number"]) == ("success", True)
    assert ti["hostname"] != victim["hostname"]


def test_the_marts_are_identical_to_duckdb_on_the_same_lake(backfilled, warehouse_settings, tmp_path_factory):
    root = tmp_path_factory.mktemp("duckdb")
    lake = generate(root / "lake", scale=LAKE_SCALE, seed=LAKE_SEED).root
    env = {
        **os.environ,
        "SPARKIFY_WAREHOUSE": "duckdb",
        "SPARKIFY_LAKE": str(lake),
        "SPARKIFY_DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "DBT_LOG_PATH": str(root / "logs"),
    }
    # Built day by day without Airflow: tests/e2e/test_backfill.py proves a backfill builds the same marts.
    on_duckdb = build_day_by_day(env, DAYS, root / "target")
    on_stack = fingerprints(warehouse_settings, MARTS)
    assert on_stack == fingerprints(on_duckdb, MARTS)
    with warehouse_for(warehouse_settings).cursor() as cur:
        cur.execute("select cast(log_date as varchar), count(*) from landing.staging_events group by 1")
        staged = dict(cur.fetchall())
    events = read_events(lake)
    assert staged == {day: sum(1 for e in events if e["_day"] == day) for day in DAYS}


def test_no_service_logs_in_as_a_superuser(warehouse_settings):
    with warehouse_for(warehouse_settings).cursor() as cur:
        cur.execute("select rolsuper, rolcreatedb from pg_roles where rolname = current_user")
        assert cur.fetchone() == (False, True)
    # Airflow's metadata login, as the metadata server sees it (its port is not published).
    [server] = [name for name in containers() if "_postgres_" in name]
    query = "select rolsuper, rolcreatedb, rolcreaterole from pg_roles where rolname = 'airflow'"
    assert docker("exec", server, "psql", "-U", "postgres", "-Atc", query).strip() == "f|f|f"
    owner = "select pg_get_userbyid(datdba) from pg_database where datname = 'airflow'"
    assert docker("exec", server, "psql", "-U", "postgres", "-Atc", owner).strip() == "airflow"


def test_the_ui_the_api_and_the_dbt_docs_refuse_anonymous_users(stack, backfilled):
    api = stack["api"]
    assert httpx.get(f"{api.url}/api/v2/dags", timeout=10).status_code == 401
    assert httpx.get(f"{api.url}/cosmos/sparkify/manifest.json", timeout=10).status_code == 401
    page = httpx.get(f"{api.url}{DOCS_PATH}", headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 303 and "/auth/login/" in page.headers["location"]
    assert httpx.post(
        f"{api.url}/auth/token", json={"username": "admin", "password": "not-the-password"}, timeout=10
    ).is_client_error
    # The FAB auth manager answers the login.
    assert httpx.get(f"{api.url}/auth/login/", timeout=10).status_code == 200
    assert httpx.get(f"{api.url}{DOCS_PATH}", headers=api.auth_headers(), timeout=10).status_code == 200


def test_published_ports_are_on_loopback_only(stack):
    published = [
        binding
        for info in containers().values()
        for bindings in (info["NetworkSettings"]["Ports"] or {}).values()
        for binding in bindings or []
    ]
    assert published and {binding["HostIp"] for binding in published} == {"127.0.0.1"}, published


def test_no_secret_in_any_container_log(stack, backfilled):
    logs = compose("logs", "--no-color", check=False).stdout
    assert "dbt_sparkify" in logs and len(logs) > 10_000
    for name in (
        "AIRFLOW_ADMIN_PASSWORD",
        "WAREHOUSE_PASSWORD",
        "WAREHOUSE_ADMIN_PASSWORD",
        "AIRFLOW_DB_PASSWORD",
    ):
        assert stack["values"][name] not in logs, f"{name} appears in the containers' logs"


def test_the_build_secret_is_in_no_image_layer():
    """pip in the builds trusted this machine's CA bundle (a build secret): no image keeps it, neither as the
    secret's file nor as a certificate added to the image's own bundle."""
    bundle = Path(os.environ.get("SPARKIFY_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
    host = set(
        re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", bundle.read_text(), re.S)
    )
    for image in ("sparkify/airflow:3.3.2", "sparkify-ci/s3:bookworm"):
        script = "test ! -e /run/secrets/pip_cert && cat /etc/ssl/certs/ca-certificates.crt"
        inside = docker("run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", image, "-c", script)
        certificates = set(
            re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", inside, re.S)
        )
        assert certificates, image
        assert not (host - debian_bundle()) & certificates, (
            f"{image} holds a certificate of this machine's own"
        )


def debian_bundle() -> set[str]:
    """The certificates of Debian's ca-certificates package as the base image has them."""
    text = docker(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/bin/cat",
        "sparkify-ci/debian:bookworm",
        "/etc/ssl/certs/ca-certificates.crt",
    )
    return set(re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S))
