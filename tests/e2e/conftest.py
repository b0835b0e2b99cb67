"""What the end-to-end modules share: the two generated days they backfill, their Airflow environment, and the
marts those days give when built without Airflow (the reference every executor's backfill must equal)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from sparkify.datagen import generate
from sparkify.local_airflow import free_port
from tests.conftest import REPO, build_day_by_day, dbt, fingerprints

DAYS = ("2018-11-01", "2018-11-02")
SEED = 11


def two_days(root: Path) -> Path:
    """The two days, generated under ``root``: the same files in every module."""
    return generate(root / "lake", scale=1, seed=SEED, days=len(DAYS)).root


def airflow_workspace(root: Path, lake: Path, **extra: str) -> dict[str, str]:
    """The environment of a backfill of ``lake`` into a DuckDB file and an Airflow home of its own, under ``root``."""
    return {
        **os.environ,
        "SPARKIFY_LAKE": str(lake),
        "SPARKIFY_DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "AIRFLOW_HOME": str(root / "airflow"),
        "SPARKIFY_AIRFLOW_PORT": str(free_port()),
        "SPARKIFY_DBT_DOCS_DIR": str(root / "dbt_docs"),
        **extra,
    }


@pytest.fixture(scope="session")
def built_without_airflow(tmp_path_factory) -> dict[str, dict[str, tuple[int, str]]]:
    """The two days staged and built day by day in this process (no Airflow): the marts' fingerprints after
    each day."""
    root = tmp_path_factory.mktemp("without-airflow")
    env = {
        **os.environ,
        "SPARKIFY_HOME": str(REPO),
        "SPARKIFY_LAKE": str(two_days(root)),
        "SPARKIFY_DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "DBT_LOG_PATH": str(root / "logs"),
        "DO_NOT_TRACK": "1",
    }
    after: dict[str, dict[str, tuple[int, str]]] = {}
    build_day_by_day(
        env, DAYS, root / "target", lambda settings, day: after.update({day: fingerprints(settings)})
    )
    assert all(rows > 0 for marts in after.values() for rows, _ in marts.values()), after
    return after


def task_logs(home: str | Path, pattern: str) -> list[Path]:
    return sorted(
        Path(home, "logs", "dag_id=sparkify_daily").glob(f"run_id=*/task_id={pattern}/attempt=*.log")
    )


def assert_warmed_before_forking(home: str | Path) -> None:
    scheduler_log = Path(home, "logs", "scheduler.log").read_text()
    assert "Loaded executor: ::sparkify.tuning.executor.WarmLocalExecutor" in scheduler_log
    warmed = scheduler_log.index("dbt warmed up in")
    assert warmed < scheduler_log.index("Worker starting up"), (
        "the executor forked its workers before dbt ran"
    )
    assert "dbt warm-up failed" not in scheduler_log


# -- runs of several days (make backfill DAYS_PER_RUN=N) ------------------------------------------------------

WEEK_AND_A_DAY = tuple(f"2018-11-{day:02d}" for day in range(1, 9))
WEEK_SEED = 31


def week_and_a_day(root: Path) -> Path:
    """Eight generated days: seven per run leave a run of one."""
    return generate(root / "lake", scale=1, seed=WEEK_SEED, days=len(WEEK_AND_A_DAY)).root


def built_without_airflow_at(
    root: Path, lake: Path, tables: tuple[str, ...], last_days: tuple[str, ...]
) -> dict[str, dict[str, tuple[int, str]]]:
    """``lake``'s days up to each of ``last_days`` staged, then built whole without Airflow (a full build, which
    equals a build a day at a time, tests/dbt/test_incremental.py, which equals a backfill of a run per day,
    test_backfill.py): the tables' fingerprints at each."""
    from datetime import date, timedelta

    from sparkify.settings import from_env
    from sparkify.warehouses import warehouse_for

    env = {
        **os.environ,
        "SPARKIFY_HOME": str(REPO),
        "SPARKIFY_LAKE": str(lake),
        "SPARKIFY_DUCKDB_PATH": str(root / "reference.duckdb"),
        "DBT_LOG_PATH": str(root / "reference-logs"),
        "DBT_EXCLUDE_RESOURCE_TYPES": "unit_test",
        "DO_NOT_TRACK": "1",
    }
    settings = from_env(env)
    warehouse = warehouse_for(settings)
    warehouse.stage_songs()
    after, day = {}, date.fromisoformat(WEEK_AND_A_DAY[0])
    for last in last_days:
        while day <= date.fromisoformat(last):
            warehouse.stage_events(day)
            day += timedelta(days=1)
        result = dbt(env, "build", "--full-refresh", "--target-path", str(root / "reference-target"))
        assert result.returncode == 0, result.stdout[-5000:]
        after[last] = fingerprints(settings, tables)
    return after


def run_in_ranges(airflow, days: tuple[str, ...], per_run: int, timeout: float = 600) -> list[dict]:
    """``days`` backfilled ``per_run`` days a run, as `make backfill DAYS_PER_RUN=N` creates them: each run
    through the REST API once the one before has finished. The runs, finished."""
    from datetime import date, timedelta

    airflow.unpause()
    runs = []
    first = date.fromisoformat(days[0])
    while first <= date.fromisoformat(days[-1]):
        last = min(first + timedelta(days=per_run - 1), date.fromisoformat(days[-1]))
        airflow.create_range_run(first, last)
        runs += airflow.wait_runs_finished(first.isoformat(), first.isoformat(), 1, timeout=timeout)
        first = last + timedelta(days=1)
    return runs


def audited_days(settings) -> dict[str, tuple[int, int]]:
    """Each day of the audit table: its rows, and how many runs recorded them."""
    from sparkify.warehouses import warehouse_for

    with warehouse_for(settings).cursor() as cur:
        cur.execute(
            "select log_date, count(*), count(distinct run_id) from landing.pipeline_audit group by 1"
        )
        return {day.isoformat(): (rows, run_ids) for day, rows, run_ids in cur.fetchall()}


def make_check(env: dict[str, str]):
    """`make check` (every data test on all of history) on the warehouse ``env`` names."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "sparkify.cli", "check"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium, headless, driven by Playwright (installed by .ci/ensure-chromium)."""
    if CHROMIUM is None:
        reason = "Chromium is not installed (.ci/ensure-chromium installs Debian's package)"
        if os.environ.get("SPARKIFY_REQUIRE_CHROMIUM"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def signed_in_health_view(browser, airflow):
    """A page of ``browser`` on the health view, signed in through the login page as a person does."""
    from sparkify.health import HEALTH_PATH
    from sparkify.local_airflow import admin_password

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{airflow.url}{HEALTH_PATH}")
    page.wait_for_selector("input[name=username]", timeout=60_000)
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", admin_password(airflow.home))
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{HEALTH_PATH}", timeout=60_000)
    page.goto(f"{airflow.url}{HEALTH_PATH}")
    page.wait_for_selector("#grid", timeout=60_000)
    return page
