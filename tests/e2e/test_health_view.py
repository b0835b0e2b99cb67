"""Monitoring, end to end: a real backfill through the scheduler of five days, the fourth with an injected volume
drop, the fifth over the bad-input allowance; the drop flagged (a warning, not a failure); the bad day failed at
staging, alone; every dbt node's result kept in the warehouse; the listening report started by the marts' asset
events; and the Sparkify health view, served by the project's plugin, opened in headless Chromium after signing
in (the bad day failed, with its error), refused to anonymous requests, and steered by nothing in a request.
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import date, timedelta
from pathlib import Path

import duckdb
import httpx
import pytest

from sparkify.datagen import generate
from sparkify.dbt_docs import DOCS_PATH
from sparkify.health import HEALTH_PATH, HEALTH_ROUTE
from sparkify.local_airflow import free_port, running
from sparkify.report import report_key
from sparkify.settings import from_env
from tests.conftest import backfill
from tests.e2e.conftest import signed_in_health_view

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

# The last day is the first with a band (anomaly_min_history_days: 3).
DAYS = [date(2018, 11, 1) + timedelta(days=offset) for offset in range(4)]
DROP = DAYS[-1]
# Over the allowance (10 bad lines, or 1 % of them): its staging fails, naming the file and the lines.
BAD_DAY = DAYS[-1] + timedelta(days=1)
BAD_LINES = 15


@pytest.fixture(scope="module")
def monitored(tmp_path_factory):
    root = tmp_path_factory.mktemp("health")
    lake = generate(root / "lake", scale=1, seed=21, days=len(DAYS) + 1, drops={DROP: 0.2})
    bad_file = lake.root / "log_data" / f"{BAD_DAY:%Y/%m}" / f"{BAD_DAY}-events.json"
    with bad_file.open("a", encoding="utf-8") as fh:
        fh.writelines('{"not json\n' for _ in range(BAD_LINES))
    env = {
        **os.environ,
        "SPARKIFY_LAKE": str(lake.root),
        "SPARKIFY_DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "AIRFLOW_HOME": str(root / "airflow"),
        "SPARKIFY_AIRFLOW_PORT": str(free_port()),
        "SPARKIFY_DBT_DOCS_DIR": str(root / "dbt_docs"),
    }
    # One run at a time (the default): each day's flags then see the days before it built.
    result = backfill(env, DAYS[0].isoformat(), BAD_DAY.isoformat())
    assert result.returncode == 1, result.report
    assert f"runs: {len(DAYS)} succeeded, 1 failed" in result.stdout, result.report
    assert f"{BAD_DAY} failed tasks: stage_events\n" in result.stdout, result.report
    return {"env": env, "db": root / "warehouse.duckdb", "lake": lake.root, "result": result}


EXPECTED_STATES = {
    **{day.isoformat(): "flagged" if day == DROP else "ok" for day in DAYS},
    BAD_DAY.isoformat(): "failed",
}


def bad_file_named(error: str) -> bool:
    return f"{BAD_DAY}-events.json: {BAD_LINES} of " in error and "lines are bad" in error


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
    assert {day["day"]: day["state"] for day in days} == EXPECTED_STATES
    (bad,) = [day for day in days if day["day"] == BAD_DAY.isoformat()]
    (task,) = bad["failed_tasks"]
    assert task["task_id"] == "stage_events" and task["try_number"] == 1
    assert "BadInputError: " in task["error"] and bad_file_named(task["error"]), task
    # Its staging changed nothing: no counts, so none from an earlier load either.
    assert bad["volumes"] == {} and bad["volumes_from_earlier_load"] is False


def test_a_signed_in_browser_sees_the_days_and_the_flag(api_server, chromium, tmp_path):
    # Anonymous, the browser is sent to the login page; signed in, back to the view.
    page = signed_in_health_view(chromium, api_server)
    rows = page.locator("#grid tr[data-day]")
    states = {
        rows.nth(i).get_attribute("data-day"): rows.nth(i).get_attribute("data-state")
        for i in range(rows.count())
    }
    assert states == EXPECTED_STATES
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
    # The failed day says why: the task, its try, its error (the file and the lines), a link to its log.
    failed = page.locator(f"#day-{BAD_DAY} + ul")
    assert "stage_events" in failed.inner_text() and "(try 1" in failed.inner_text()
    assert bad_file_named(failed.locator("pre.error").inner_text()), failed.inner_text()
    # stage_events is mapped over the run's days: the link opens the day's own instance.
    assert "/tasks/stage_events/mapped/0?try_number=1" in failed.locator("a.log").get_attribute("href")
    page.screenshot(path=str(tmp_path / "health.png"), full_page=True)
    # The view inside the Airflow UI, under its own route.
    page.goto(f"{api_server.url}/plugin/{HEALTH_ROUTE}")
    frame = page.frame_locator("iframe")
    frame.locator("#grid").wait_for(timeout=60_000)
    assert frame.locator("#grid tr[data-day]").count() == len(EXPECTED_STATES)


class Listener:
    """A TCP listener on loopback that counts the connections it is sent: where a forged header points."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def forged_headers(port: int) -> list[dict[str, str]]:
    forged = f"127.0.0.1:{port}"
    return [
        {"Host": forged},
        {"X-Forwarded-Host": forged, "X-Forwarded-Proto": "http", "X-Forwarded-Port": str(port)},
        {"Forwarded": f"host={forged};proto=http"},
        {"Host": forged, "X-Forwarded-Host": forged, "Forwarded": f"for=127.0.0.1;host={forged}"},
    ]


def test_no_request_header_steers_the_views_calls(api_server, listener):
    signed_in = api_server.auth_headers()
    for headers in forged_headers(listener.port):
        for path in (HEALTH_PATH, f"{HEALTH_PATH}.json"):
            response = httpx.get(f"{api_server.url}{path}", headers={**signed_in, **headers}, timeout=60)
            assert response.status_code == 200, (path, headers, response.text[:500])
            # Its links are paths on the origin the browser used, never the forged one.
            assert str(listener.port) not in response.text, (path, headers)
    page = httpx.get(f"{api_server.url}{HEALTH_PATH}", headers=signed_in, timeout=60)
    assert 'id="grid"' in page.text
    assert listener.connections == 0


def test_query_parameters_change_nothing(api_server):
    signed_in = api_server.auth_headers()
    plain = httpx.get(f"{api_server.url}{HEALTH_PATH}.json", headers=signed_in, timeout=60).json()
    steered = httpx.get(
        f"{api_server.url}{HEALTH_PATH}.json",
        params={"dag_id": "other", "limit": "1", "order_by": "logical_date", "state": "success", "url": "x"},
        headers=signed_in,
        timeout=60,
    ).json()
    assert steered == plain and len(plain) == len(EXPECTED_STATES)


def test_no_spelling_of_the_paths_reaches_a_page_anonymously(api_server):
    spellings = [
        f"{HEALTH_PATH}.json",
        f"{HEALTH_PATH}.json?x=1",
        "/%73parkify/health.json",
        "/sparkify//health.json",
        "/sparkify/./health.json",
        "/sparkify/health.json/",
        "/cosmos/sparkify/manifest.json",
        "/cosmos/sparkify/catalog.json",
        "/cosmos/sparkify/..%2F..%2Fpasswords.json",
        "/cosmos/%2e%2e/sparkify/manifest.json",
    ]
    # What each page holds: the view's days, its grid, the dbt docs' manifest and catalog.
    contents = ('"run_state"', 'id="grid"', "dbt_schema_version")
    with httpx.Client(base_url=api_server.url, timeout=30) as client:
        for path in spellings:
            response = client.send(client.build_request("GET", path))
            leaked = [content for content in contents if content in response.text]
            assert not leaked, (path, response.status_code, leaked)


def test_the_way_back_from_the_login_page_stays_on_the_origin(api_server, listener):
    for headers in forged_headers(listener.port):
        response = httpx.get(
            f"{api_server.url}{HEALTH_PATH}?days=30",
            headers={"Accept": "text/html", **headers},
            timeout=30,
        )
        assert response.status_code == 303, headers
        location = response.headers["location"]
        assert str(listener.port) not in location, (headers, location)
        assert "sparkify%2Fhealth%3Fdays%3D30" in location or "/sparkify/health?days=30" in location, location


def test_responses_carry_the_framing_and_content_type_headers(api_server):
    signed_in = api_server.auth_headers()
    ui = httpx.get(api_server.url, timeout=30)
    for path, content_type in (
        (HEALTH_PATH, "text/html; charset=utf-8"),
        (f"{HEALTH_PATH}.json", "application/json"),
        (DOCS_PATH, "text/html; charset=utf-8"),
    ):
        response = httpx.get(f"{api_server.url}{path}", headers=signed_in, timeout=60)
        assert response.status_code == 200, (path, response.status_code)
        assert response.headers["content-type"] == content_type, path
        assert response.headers["x-content-type-options"] == "nosniff", path
        # Framed by Airflow's own UI (the plugin page's iframe), by nothing else.
        assert response.headers["x-frame-options"] == "SAMEORIGIN", path
        assert response.headers["content-security-policy"] == "frame-ancestors 'self'", path
        # Whatever Airflow's UI itself sets for these, the pages set the same.
        for header in ("x-frame-options", "x-content-type-options"):
            if header in ui.headers:
                assert response.headers[header] == ui.headers[header], (path, header)
