"""The project's Airflow plugin.

- The **Sparkify health** view (``sparkify.health``): a FastAPI app under ``/sparkify/``, shown in the UI's
  navigation (Browse) through an external view, as Airflow 3.1+ plugins add pages.
- **Signed-in users only**, for it and for the dbt docs that Cosmos serves under ``/cosmos/``: neither app has
  authentication of its own, and both show the warehouse's contents. A browser signed in to the Airflow UI carries
  the auth manager's token in a cookie, a script in a bearer header; either is checked by the configured auth
  manager (simple locally, FAB in the compose stack). A browser without one is sent to the login page and back.
- **Nothing in a request steers a server-side call.** The view reads Airflow's REST API at the address the
  deployment configures (``airflow_api_url``), never at one built from the request's ``Host`` or forwarding
  headers; its links and the login page's way back are paths on the same origin. What each surface reads from a
  request: docs/monitoring.md.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import httpx
from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from sparkify.arrival import TASK_ID as WAIT_TASK_ID
from sparkify.arrival import waits
from sparkify.deadline import ScheduledDayEnd
from sparkify.health import DAG_ID, DAYS_SHOWN, HEALTH_PATH, HEALTH_PREFIX, HEALTH_ROUTE
from sparkify.run_days import IntervalError, run_days
from sparkify.task_errors import first_error_line, task_log_request

DOCS_PREFIX = "/cosmos/"
# The wait for a day's file has not ended: it is checking, or between checks.
WAITING_STATES = ("scheduled", "queued", "running", "up_for_reschedule")
SIGNED_IN_ONLY = (DOCS_PREFIX, f"{HEALTH_PREFIX}/")
# On every response of those pages: Airflow's UI shows them in an iframe of its own origin, and nothing else may
# frame them or sniff another type from them.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Content-Security-Policy": "frame-ancestors 'self'",
    "Referrer-Policy": "same-origin",
}


def _token(request: Request) -> str | None:
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials
    return request.cookies.get(COOKIE_NAME_JWT_TOKEN)


async def signed_in(request: Request) -> bool:
    token = _token(request)
    if not token:
        return False
    try:
        await _auth_manager().get_user_from_token(token)
    except Exception:
        return False
    return True


def _auth_manager() -> Any:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager()


class SignInRequired(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: Any) -> Response:
        if not request.url.path.startswith(SIGNED_IN_ONLY):
            return await call_next(request)
        if await signed_in(request):
            response = await call_next(request)
            for header, value in SECURITY_HEADERS.items():
                response.headers.setdefault(header, value)
            return response
        if "text/html" in request.headers.get("accept", ""):
            # Back to the same path on the same origin: a URL built from the Host header would send the browser,
            # once signed in, wherever the request said.
            back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(_auth_manager().get_url_login(next_url=back), status_code=303)
        return JSONResponse({"detail": "Not authenticated"}, status_code=401)


health_app = FastAPI(title="Sparkify health", docs_url=None, redoc_url=None, openapi_url=None)


def airflow_api_url() -> str:
    """Airflow's REST API as this api-server serves it, from configuration only: ``SPARKIFY_AIRFLOW_API_URL`` when
    set (a deployment behind a proxy that the api-server cannot reach itself on loopback), else the loopback
    address and ``[api] port`` it listens on, under the path of ``[api] base_url``."""
    import os

    from airflow.configuration import conf

    configured = os.environ.get("SPARKIFY_AIRFLOW_API_URL")
    if configured:
        return configured.rstrip("/")
    return f"http://127.0.0.1:{conf.getint('api', 'port', fallback=8080)}{_base_path()}/api/v2"


def _base_path() -> str:
    """The path Airflow's UI is served under (``[api] base_url``), "" at the root."""
    from airflow.configuration import conf

    return urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


def task_of_day(task: dict[str, Any], day: date) -> bool:
    """Whether a failed task instance belongs to ``day``: a task of the whole run, or the day's mapped one."""
    mapped = task.get("map_index")
    return mapped is None or mapped < 0 or task.get("rendered_map_index") in (None, day.isoformat())


def runs_by_day(dag_runs: list[dict[str, Any]]) -> dict[date, dict[str, Any]]:
    """Each day's latest run (by when it was queued): a run of several days counts for each of its days."""
    runs: dict[date, dict[str, Any]] = {}
    for run in sorted(
        dag_runs, key=lambda run: run.get("queued_at") or run.get("run_after") or "", reverse=True
    ):
        start, end = run.get("data_interval_start"), run.get("data_interval_end")
        first = date.fromisoformat((run.get("logical_date") or run["run_after"])[:10])
        try:
            days = (
                run_days(datetime.fromisoformat(start), datetime.fromisoformat(end))
                if start and end
                else [first]
            )
        except IntervalError:  # such a run fails at its first task: shown on its logical date
            days = [first]
        for day in days:
            runs.setdefault(day, run)
    return runs


async def _airflow_runs(request: Request) -> dict[date, dict[str, Any]]:
    """Each day's latest run of the daily DAG and its failed tasks, each with the first line of its error, from
    Airflow's REST API as the viewer (the viewer's own token, so the auth manager decides what they may see)."""
    root = f"{airflow_api_url()}/dags/{DAG_ID}/dagRuns"
    headers = {"Authorization": f"Bearer {_token(request)}"}
    # follow_redirects stays off: the answer of the configured address is the answer.
    async with httpx.AsyncClient(headers=headers, timeout=30, trust_env=False) as client:
        response = await client.get(root, params={"order_by": "-logical_date", "limit": DAYS_SHOWN * 2})
        response.raise_for_status()
        runs = runs_by_day(response.json()["dag_runs"])
        for run in {run["dag_run_id"]: run for run in runs.values()}.values():
            run["waiting_since"] = await _waiting_since(client, root, run)
            run["failed_tasks"] = []
            if run["state"] == "failed":
                run_path = f"{root}/{quote(run['dag_run_id'], safe='')}"
                tasks = await client.get(f"{run_path}/taskInstances", params={"state": "failed"})
                tasks.raise_for_status()
                run["failed_tasks"] = tasks.json()["task_instances"]
                for task in run["failed_tasks"]:
                    task["error"] = await _task_error(client, run["dag_run_id"], task)
    return runs


async def _waiting_since(client: httpx.AsyncClient, root: str, run: dict[str, Any]) -> str | None:
    """When a scheduled run that is still waiting for its days' files began to wait (the wait follows the run's
    first task at once: the run's start), else None."""
    if run["state"] not in ("queued", "running") or not waits(run.get("run_type")):
        return None
    wait = await client.get(f"{root}/{quote(run['dag_run_id'], safe='')}/taskInstances/{WAIT_TASK_ID}")
    if wait.status_code == 404:
        return None
    wait.raise_for_status()
    if wait.json().get("state") not in WAITING_STATES:
        return None
    return run.get("start_date")


async def _task_error(client: httpx.AsyncClient, run_id: str, task: dict[str, Any]) -> str:
    path, params = task_log_request(
        DAG_ID, run_id, task["task_id"], task.get("try_number") or 1, task.get("map_index")
    )
    try:
        log = await client.get(
            f"{airflow_api_url()}{path}",
            params=params,
            headers={"Accept": "application/json"},
        )
        log.raise_for_status()
    except httpx.HTTPError as error:
        return f"(log unavailable: {str(error).splitlines()[0]})"
    return first_error_line(log.json())


def _days(runs: dict[date, dict[str, Any]]) -> tuple[list[Any], str | None]:
    """The days shown, and why the warehouse could not be read, if so (the days then have their runs alone)."""
    from sparkify.health import mark_arrival, run_days_only, warehouse_days
    from sparkify.settings import settings
    from sparkify.warehouses import QueryError

    error = None
    try:
        days = warehouse_days(settings(), runs)
    except QueryError as unreadable:
        # Not created yet (before the first run's staging), or a DuckDB file locked by a run writing it.
        days, error = run_days_only(runs), str(unreadable)
    for day in days:
        mark_arrival(settings(), day)
        # A day's own mapped instance (staging of that day) or a task of the whole run.
        day.failed_tasks = [
            task for task in (day.run or {}).get("failed_tasks", []) if task_of_day(task, day.day)
        ]
    return days, error


@health_app.get("/health", response_class=HTMLResponse)
async def health_page(request: Request) -> HTMLResponse:
    from sparkify.health import page
    from sparkify.settings import settings

    # Links are paths on the origin the browser already uses, under the UI's base path.
    ui_url = _base_path()
    runs = await _airflow_runs(request)
    days, error = await asyncio.to_thread(_days, runs)
    return HTMLResponse(await asyncio.to_thread(page, settings(), days, ui_url, error))


@health_app.get("/health.json")
async def health_json(request: Request) -> JSONResponse:
    runs = await _airflow_runs(request)
    days, _ = await asyncio.to_thread(_days, runs)
    return JSONResponse(
        [
            {
                "day": day.day.isoformat(),
                "state": day.state,
                "run_state": (day.run or {}).get("state"),
                "tests": day.tests,
                "flagged": day.flagged,
                "volumes": {k: v for k, v in (day.volumes or {}).items() if k != "log_date"},
                "volumes_from_earlier_load": day.volumes_from_earlier_load,
                "waiting_since": day.waiting_since,
                "deadline": day.deadline.isoformat() if day.deadline else None,
                "late": day.late,
                "failed_tasks": [
                    {key: task.get(key) for key in ("task_id", "map_index", "try_number", "error")}
                    for task in day.failed_tasks
                ],
            }
            for day in days
        ]
    )


class SparkifyPlugin(AirflowPlugin):
    name = "sparkify"
    # The scheduler reads the daily DAG's deadline back through this (``sparkify.deadline``).
    deadline_references: ClassVar[list[type]] = [ScheduledDayEnd]
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": health_app, "url_prefix": HEALTH_PREFIX, "name": "Sparkify health"}
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "Sparkify health",
            "href": HEALTH_PATH.lstrip("/"),
            "url_route": HEALTH_ROUTE,
            "destination": "nav",
            "category": "browse",
        }
    ]
    fastapi_root_middlewares: ClassVar[list[dict[str, Any]]] = [
        {
            "middleware": SignInRequired,
            "args": [],
            "kwargs": {},
            "name": "dbt docs and Sparkify health: signed-in users only",
        }
    ]
