"""The docker-compose topology, natively: CeleryExecutor with a PostgreSQL metadata database, a Redis broker, a
scheduler, a dag-processor, an api-server and two Celery workers, all local processes on 127.0.0.1 started and
stopped by this test. A three-day backfill on the PostgreSQL warehouse, with the lake in S3 (a real S3-compatible
server on loopback, reached through the aws_default connection), is created through the REST API; one worker is
SIGKILLed while it runs a task and comes back once that task has been retried on the other (as compose's
``restart: always`` brings it back); every run still succeeds, on both workers, with no duplicated row, and no secret
reaches any log."""

from __future__ import annotations

import os
import signal
import uuid
from datetime import date

import psycopg2
import pytest

from sparkify.datagen import generate
from sparkify.lake import Lake
from sparkify.local_airflow import DAG_ID, free_port, running
from sparkify.settings import from_env
from sparkify.staging import postgres
from sparkify.warehouses import warehouse_for
from tests.conftest import drop_database, read_events, s3_connection_env, upload_lake

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

# Days past November and across a year's end: the schedule has no fixed month.
# Across a year's end; the second day shows the killed worker back at work.
DAYS = ("2018-12-31", "2019-01-01")
WORKERS = ("worker-a", "worker-b")
PG_PASSWORD = "known-warehouse-password"


@pytest.fixture(scope="module")
def redis_url() -> str:
    """The broker of REDIS_URL (default redis://127.0.0.1:6379/0): skipped with a reason when it is not there,
    except where SPARKIFY_REQUIRE_REDIS is set (CI), where that is a failure."""
    import redis

    url = os.environ.get("SPARKIFY_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        reason = (
            f"Redis not reachable at {url} ({error}): install and start it (docs/warehouses.md: Run the full stack) "
            "to run the Celery topology test"
        )
        if os.environ.get("SPARKIFY_REQUIRE_REDIS"):
            pytest.fail(reason)
        pytest.skip(reason)
    return url


def create_database(name: str) -> None:
    pg = from_env(os.environ).postgres
    con = psycopg2.connect(host=pg.host, port=pg.port, user=pg.user, password=pg.password, dbname="postgres")
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(f'create database "{name}"')
    finally:
        con.close()


@pytest.fixture(scope="module")
def topology(tmp_path_factory, postgres_server, redis_url, s3_server):
    root = tmp_path_factory.mktemp("celery")
    lake = generate(root / "lake", scale=1, seed=17, start=date.fromisoformat(DAYS[0]), days=len(DAYS)).root
    s3_lake = upload_lake(s3_server, lake, f"celery-{uuid.uuid4().hex[:8]}", "sparkify")
    suffix = uuid.uuid4().hex[:10]
    metadata, warehouse_db, queue = (
        f"airflow_meta_{suffix}",
        f"sparkify_celery_{suffix}",
        f"sparkify_{suffix}",
    )
    pg = from_env(os.environ).postgres
    login = f"{pg.user}:{pg.password}@" if pg.password else f"{pg.user}@"
    create_database(metadata)
    env = {
        **os.environ,
        **s3_connection_env(s3_server),
        "SPARKIFY_LAKE": s3_lake,
        "SPARKIFY_WAREHOUSE": "postgres",
        "SPARKIFY_PG_DATABASE": warehouse_db,
        # The test server trusts local logins; the password is there to prove it never reaches a log.
        "SPARKIFY_PG_PASSWORD": PG_PASSWORD,
        "SPARKIFY_RETRIES": "2",
        "SPARKIFY_RETRY_DELAY_SECONDS": "2",
        "SPARKIFY_MAX_ACTIVE_RUNS": "1",
        # An S3 lake: the schedule's last day is set, as the compose stack sets it for its sample.
        "SPARKIFY_END_DATE": DAYS[-1],
        "SPARKIFY_DBT_DOCS_DIR": str(root / "dbt_docs"),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "sparkify.tuning.celery_config.CELERY_CONFIG",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{login}{pg.host}:{pg.port}/{metadata}",
        "AIRFLOW__CELERY__BROKER_URL": redis_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{login}{pg.host}:{pg.port}/{metadata}",
        # A queue of this test's own: other Airflows on the same Redis never take its tasks.
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
        # A lost worker's task is failed (then retried elsewhere) after 30 s without a heartbeat.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        # A task the lost worker had taken from the queue but not started stays queued; it is sent again after
        # 120 s (default 600 s). At most 4 tasks are out at once (the two workers' slots), so a task still waiting
        # in the queue for a free slot is never mistaken for a lost one.
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10",
        "AIRFLOW__CORE__PARALLELISM": "4",
    }
    settings = from_env(env)
    postgres.ensure_database(settings)
    try:
        with running(settings, free_port(), home=root / "airflow", base_env=env) as airflow:
            for name in WORKERS:
                airflow.start_worker(name, queue)
            yield {
                "airflow": airflow,
                "lake": lake,
                "s3_lake": s3_lake,
                "settings": settings,
                "home": root / "airflow",
                "queue": queue,
            }
    finally:
        drop_database(warehouse_db)
        drop_database(metadata)


@pytest.fixture(scope="module")
def backfill(topology):
    airflow, queue = topology["airflow"], topology["queue"]
    # One run at a time, as deployed (SPARKIFY_MAX_ACTIVE_RUNS=1): runs at once on PostgreSQL rebuild the shared
    # dimensions under each other (docs/operations.md: Reruns, interruptions, failures). The run's tasks still spread over both
    # workers.
    airflow.create_backfill(DAYS[0], DAYS[-1], max_active_runs=1)

    def caught_running():
        """A dbt task running on a worker, with that worker frozen (SIGSTOP) while the task is still running,
        so the SIGKILL that follows lands mid-task, never just after it finished."""
        listing = airflow.api(
            "GET", f"/dags/{DAG_ID}/dagRuns/~/taskInstances", params={"state": "running", "limit": 100}
        )
        # The worker running the run's dbt build is spared: with the build lost too, its retry waits for a slot
        # that the other worker's node tasks hold while they wait for that very build (docs/warehouses.md).
        building = {
            ti["hostname"]
            for ti in listing["task_instances"]
            if ti["task_id"] == "dbt_sparkify.dbt_producer_watcher"
        }
        for ti in listing["task_instances"]:
            # A model's or a test's task (the run's one dbt build skips its retries by design).
            if not (ti["task_id"].startswith("dbt_sparkify.") and ti["hostname"] in WORKERS):
                continue
            if ti["task_id"] == "dbt_sparkify.dbt_producer_watcher" or ti["hostname"] in building:
                continue
            # In the first day's run, so that the runs after it show the lost worker back at work.
            if not (ti.get("logical_date") or "").startswith(DAYS[0]):
                continue
            worker = airflow.processes[f"worker-{ti['hostname']}"]
            os.killpg(worker.pid, signal.SIGSTOP)
            path = f"/dags/{DAG_ID}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}"
            if airflow.api("GET", path)["state"] == "running":
                return ti
            os.killpg(worker.pid, signal.SIGCONT)
        if airflow.finished_runs(DAYS[0], DAYS[0], 1):
            raise AssertionError(
                "the first run finished before a dbt task could be caught running on a worker"
            )
        return None

    victim = airflow.wait_until("a dbt task running on a worker", caught_running, timeout=300, interval=0.2)
    airflow.kill(f"worker-{victim['hostname']}")

    # The lost worker comes back (compose: restart: always) once its task runs on the other one, and takes
    # its share of the runs that follow.
    airflow.wait_until(
        "the killed worker's task retried on the other worker",
        lambda: airflow.moved_elsewhere(victim),
        timeout=300,
        interval=1,
    )
    airflow.start_worker(victim["hostname"], queue)

    runs = airflow.wait_runs_finished(DAYS[0], DAYS[-1], len(DAYS), timeout=600)
    tasks = {run["logical_date"][:10]: airflow.task_instances(run["dag_run_id"]) for run in runs}
    return {"runs": runs, "tasks": tasks, "victim": victim}


def test_every_run_succeeds_on_both_workers(backfill):
    assert [run["state"] for run in backfill["runs"]] == ["success"] * len(DAYS), backfill["runs"]
    # (The scheduler itself marks the watcher's empty "build done" task: no worker runs it.)
    ran = [ti for tis in backfill["tasks"].values() for ti in tis if ti["operator"] != "EmptyOperator"]
    assert {ti["hostname"] for ti in ran} == set(WORKERS)
    # The killed worker, back, took work again in the runs after the first (where it was killed).
    later = [ti for day, tis in backfill["tasks"].items() if day > DAYS[0] for ti in tis]
    assert backfill["victim"]["hostname"] in {ti["hostname"] for ti in later}


def test_each_worker_warmed_dbt_before_forking_its_pool(topology, backfill):
    for worker in WORKERS:
        log = (topology["home"] / "logs" / f"worker-{worker}.log").read_text()
        assert "dbt warmed up in" in log, worker
        assert "dbt warm-up failed" not in log, worker


def test_the_task_of_the_killed_worker_was_retried_on_the_other(backfill):
    victim = backfill["victim"]
    retried = [
        ti
        for tis in backfill["tasks"].values()
        for ti in tis
        if ti["task_id"] == victim["task_id"] and ti["dag_run_id"] == victim["dag_run_id"]
    ]
    assert len(retried) == 1
    [ti] = retried
    assert ti["state"] == "success"
    assert ti["try_number"] > victim["try_number"]
    assert ti["hostname"] != victim["hostname"]


def test_the_warehouse_holds_each_day_once(topology, backfill):
    events = read_events(topology["lake"])
    with warehouse_for(topology["settings"]).cursor() as cur:
        cur.execute("select cast(log_date as varchar), count(*) from landing.staging_events group by 1")
        staged = dict(cur.fetchall())
        cur.execute(
            "select cast(log_date as varchar), count(*), count(distinct songplay_id) "
            "from analytics.fct_songplays group by 1"
        )
        plays = {day: (rows, distinct) for day, rows, distinct in cur.fetchall()}
    for day in DAYS:
        day_events = [e for e in events if e["_day"] == day]
        expected = len({(e["sessionId"], e["itemInSession"]) for e in day_events if e["page"] == "NextSong"})
        assert staged[day] == len(day_events)
        assert plays[day] == (expected, expected)


def test_the_lake_was_read_from_s3(topology, backfill):
    with warehouse_for(topology["settings"]).cursor() as cur:
        cur.execute("select distinct source_file from landing.staging_events order by 1")
        assert [row[0] for row in cur.fetchall()] == [
            f"{topology['s3_lake']}/{Lake.log_key(date.fromisoformat(day))}" for day in DAYS
        ]


def test_no_secret_in_any_log(topology, backfill):
    logs = [path for path in topology["home"].rglob("*.log") if path.is_file()]
    assert len(logs) > len(DAYS) * 30
    for secret in (PG_PASSWORD, "sparkify-test-secret"):
        leaks = [str(path) for path in logs if secret in path.read_text(errors="ignore")]
        assert leaks == [], f"{secret!r} found in {leaks[:5]}"
