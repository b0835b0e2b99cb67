"""The project's Airflow plugin.

- The **Sparkify health** view (``sparkify.health``): a FastAPI app under ``/sparkify/``, shown in the UI's
  navigation (Browse) through an external view, as Airflow 3.1+ plugins add pages.
- **Signed-in users only**, for it and for the dbt docs that Cosmos serves under ``/cosmos/``: neither app has
  authentication of its own, and both show the warehouse's contents. A browser signed in to the Airflow UI carries
  the auth manager's token in a cookie, a script in a bearer header; either is checked by the configured auth
  manager (simple locally, FAB in the compose stack). A browser without one is sent to the login page and back.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any, ClassVar

import httpx
from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from sparkify.health import DAG_ID, DAYS_SHOWN, HEALTH_PATH, HEALTH_PREFIX, HEALTH_ROUTE

DOCS_PREFIX = "/cosmos/"
SIGNED_IN_ONLY = (DOCS_PREFIX, f"{HEALTH_PREFIX}/")


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
        if not request.url.path.startswith(SIGNED_IN_ONLY) or await signed_in(request):
            return await call_next(request)
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(_auth_manager().get_url_login(next_url=str(request.url)), status_code=303)
        return JSONResponse({"detail": "Not authenticated"}, status_code=401)


health_app = FastAPI(title="Sparkify health", docs_url=None, redoc_url=None, openapi_url=None)


async def _airflow_runs(request: Request) -> dict[date, dict[str, Any]]:
    """Each day's latest run of the daily DAG and its failed tasks, from Airflow's REST API as the viewer."""
    root = f"{request.url.scheme}://{request.url.netloc}/api/v2/dags/{DAG_ID}/dagRuns"
    headers = {"Authorization": f"Bearer {_token(request)}"}
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:
        response = await client.get(root, params={"order_by": "-logical_date", "limit": DAYS_SHOWN * 2})
        response.raise_for_status()
        runs: dict[date, dict[str, Any]] = {}
        for run in response.json()["dag_runs"]:
            day = date.fromisoformat((run.get("logical_date") or run["run_after"])[:10])
            runs.setdefault(day, run)
        for run in runs.values():
            run["failed_tasks"] = []
            if run["state"] == "failed":
                tasks = await client.get(
                    f"{root}/{run['dag_run_id']}/taskInstances", params={"state": "failed"}
                )
                tasks.raise_for_status()
                run["failed_tasks"] = tasks.json()["task_instances"]
    return runs


def _days(runs: dict[date, dict[str, Any]]) -> list[Any]:
    from sparkify.health import warehouse_days
    from sparkify.settings import settings

    days = warehouse_days(settings(), runs)
    for day in days:
        day.failed_tasks = (day.run or {}).get("failed_tasks", [])
    return days


@health_app.get("/health", response_class=HTMLResponse)
async def health_page(request: Request) -> HTMLResponse:
    from sparkify.health import page
    from sparkify.settings import settings
    from sparkify.warehouses import QueryError

    ui_url = f"{request.url.scheme}://{request.url.netloc}"
    runs = await _airflow_runs(request)
    try:
        days = await asyncio.to_thread(_days, runs)
    except QueryError as error:
        # DuckDB: the file is locked while a run writes it.
        return HTMLResponse(page(settings(), [], ui_url, error=str(error)), status_code=503)
    return HTMLResponse(await asyncio.to_thread(page, settings(), days, ui_url))


@health_app.get("/health.json")
async def health_json(request: Request) -> JSONResponse:
    runs = await _airflow_runs(request)
    days = await asyncio.to_thread(_days, runs)
    return JSONResponse(
        [
            {
                "day": day.day.isoformat(),
                "state": day.state,
                "run_state": (day.run or {}).get("state"),
                "tests": day.tests,
                "flagged": day.flagged,
                "volumes": {k: v for k, v in (day.volumes or {}).items() if k != "log_date"},
            }
            for day in days
        ]
    )


class SparkifyPlugin(AirflowPlugin):
    name = "sparkify"
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
