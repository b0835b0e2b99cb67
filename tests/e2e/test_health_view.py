"""Monitoring, end to end: a real backfill through the scheduler of four days, the last one with an injected volume
drop; the drop flagged (a warning, not a failure); every dbt node's result kept in the warehouse; the listening
report started by the marts' asset events; and the Sparkify health view, served by the project's plugin, opened
in headless Chromium after signing in, and refused to anonymous requests.
"""

from __future__ import annotations

import os
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import httpx
import pytest

from sparkify.datagen import generate
from sparkify.health import HEALTH_PATH, HEALTH_ROUTE
from sparkify.local_airflow import admin_password, free_port, running
from sparkify.report import report_key
from sparkify.settings import from_env
from tests.conftest import REPO, backfill

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

# The last day is the first with a band (anomaly_min_history_days: 3).
DAYS = [date(2018, 11, 1) + timedelta(days=offset) for offset in range(4)]
DROP = DAYS[-1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Where `SPARKIFY_SCREENSHOT=1 pytest tests/e2e/test_health_view.py` leaves the README's screenshot.
SCREENSHOT = REPO / "docs" / "health_view.png"


@pytest.fixture(scope="module")
def monitored(tmp_path_factory):
    root = tmp_path_factory.mktemp("health")
    lake = generate(root / "lake", scale=1, seed=21, days=len(DAYS), drops={DROP: 0.2})
    env = {
        **os.environ,
        "SPARKIFY_LAKE": str(lake.root),
        "SPARKIFY_DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "AIRFLOW_HOME": str(root / "airflow"),
        "SPARKIFY_AIRFLOW_PORT": str(free_port()),
        "SPARKIFY_DBT_DOCS_DIR": str(root / "dbt_docs"),
    }
    # One run at a time (the default): each day's flags then see the days before it built.
    result = backfill(env, DAYS[0].isoformat(), DAYS[-1].isoformat())
    assert result.returncode == 0, result.report
    return {"env": env, "db": root / "warehouse.duckdb", "lake": lake.root, "result": result}


def fetch(monitored, sql: str) -> list[tuple]:
    with duckdb.connect(str(monitored["db"]), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_the_dropped_day_is_flagged_and_its_run_succeeds(monitored):
    flagged = fetch(monitored, "select log_date, metric from analytics.fct_daily_anomalies where is_anomaly")
    assert sorted(flagged) == [(DROP, "events"), (DROP, "songplays")]
    # The flag's test warned on that day's run, and passed on the others.
    statuses = fetch(
        monitored,
        "select run_date, status from landing.dbt_results where node_name like 'not_flagged_fct_daily_anomalies%'",
    )
    assert sorted(statuses) == [(day, "warn" if day == DROP else "pass") for day in DAYS]


def test_every_node_of_every_run_is_kept_once(monitored):
    rows = fetch(
        monitored,
        "select run_date, count(distinct run_id), count(*), count(distinct unique_id), "
        "count(*) filter (where resource_type = 'test'), count(*) filter (where status in ('error', 'fail')) "
        "from landing.dbt_results group by run_date order by run_date",
    )
    assert [row[0] for row in rows] == DAYS
    for day, runs, nodes, distinct_nodes, tests, failed in rows:
        assert (runs, failed) == (1, 0), day
        assert nodes == distinct_nodes and tests > 50, (day, nodes, distinct_nodes, tests)
    audit = fetch(monitored, "select log_date, max(dbt_tests_passed) from landing.pipeline_audit group by 1")
    # The summary counts the tests that passed from the kept results: one fewer on the flagged day.
    passed = dict(audit)
    assert passed[DROP] == passed[DAYS[0]] - 1 > 50, passed


def test_the_marts_asset_events_start_the_listening_report(monitored):
    assert "sparkify_listening_report:" in monitored["result"].stdout
    assert "failed" not in monitored["result"].stdout.split("sparkify_listening_report:")[1].splitlines()[0]
    reported = fetch(
        monitored,
        "select report_date, sum(plays) filter (where section = 'plays_by_level') from analytics.rpt_daily_listening "
        "group by 1 order by 1",
    )
    plays = dict(fetch(monitored, "select log_date, count(*) from analytics.fct_songplays group by 1"))
    assert reported == [(day, plays[day]) for day in DAYS]
    for day in DAYS:
        chart = Path(monitored["lake"]) / report_key(day)
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", chart


@pytest.fixture(scope="module")
def api_server(monitored):
    env = monitored["env"]
    with running(
        from_env(env), free_port(), home=Path(env["AIRFLOW_HOME"]), base_env=env, components=("api-server",)
    ) as airflow:
        yield airflow


def test_anonymous_requests_are_refused(api_server):
    url = f"{api_server.url}{HEALTH_PATH}"
    assert httpx.get(url, timeout=30).status_code == 401
    assert httpx.get(f"{url}.json", headers={"Authorization": "Bearer forged"}, timeout=30).status_code == 401
    browser = httpx.get(url, headers={"Accept": "text/html"}, timeout=30)
    assert browser.status_code == 303 and "login" in browser.headers["location"]


def test_the_view_is_in_the_ui_navigation(api_server):
    plugins = api_server.api("GET", "/plugins")["plugins"]
    views = [view for plugin in plugins for view in plugin.get("external_views", [])]
    assert any(
        view["url_route"] == HEALTH_ROUTE and view["href"] == HEALTH_PATH.lstrip("/") for view in views
    )
    days = httpx.get(
        f"{api_server.url}{HEALTH_PATH}.json", headers=api_server.auth_headers(), timeout=60
    ).json()
    assert {day["day"]: day["state"] for day in days} == {
        day.isoformat(): "flagged" if day == DROP else "ok" for day in DAYS
    }


@pytest.fixture(scope="module")
def chromium():
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


def test_a_signed_in_browser_sees_the_days_and_the_flag(api_server, chromium, tmp_path):
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    # Anonymous, the browser is sent to the login page; signed in, back to the view.
    page.goto(f"{api_server.url}{HEALTH_PATH}")
    page.wait_for_selector("input[name=username]", timeout=60_000)
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", admin_password(api_server.home))
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{HEALTH_PATH}", timeout=60_000)
    page.goto(f"{api_server.url}{HEALTH_PATH}")
    page.wait_for_selector("#grid", timeout=60_000)
    rows = page.locator("#grid tr[data-day]")
    states = {
        rows.nth(i).get_attribute("data-day"): rows.nth(i).get_attribute("data-state")
        for i in range(rows.count())
    }
    assert states == {day.isoformat(): "flagged" if day == DROP else "ok" for day in DAYS}
    dropped = page.locator(f'#grid tr[data-day="{DROP}"]')
    assert dropped.locator('td[data-flagged="true"]').count() == 2
    assert page.locator('#grid td[data-flagged="true"]').count() == 2
    # The plot marks the flagged day; the problems list names the warning test and shows the flagged rows.
    assert page.locator("#plot circle.flag").count() == 2
    assert page.locator("#plot polygon.band").count() == 2
    section = page.locator(f"#day-{DROP}")
    assert "flagged" in section.inner_text()
    details = page.locator(f"#day-{DROP} + ul").inner_text()
    assert "not_flagged_fct_daily_anomalies" in details and "songplays" in details
    page.screenshot(path=str(tmp_path / "health.png"), full_page=True)
    if os.environ.get("SPARKIFY_SCREENSHOT"):
        page.screenshot(path=str(SCREENSHOT), full_page=True)
    # The view inside the Airflow UI, under its own route.
    page.goto(f"{api_server.url}/plugin/{HEALTH_ROUTE}")
    frame = page.frame_locator("iframe")
    frame.locator("#grid").wait_for(timeout=60_000)
    assert frame.locator("#grid tr[data-day]").count() == len(DAYS)
