"""The project's Airflow plugin: the dbt docs that Cosmos serves under /cosmos/ answer signed-in users only.

Cosmos' docs app has no authentication of its own, and the docs describe every table and column of the warehouse.
A browser signed in to the Airflow UI carries the auth manager's token in a cookie, a script in a bearer header;
either is checked by the configured auth manager (simple locally, FAB in the compose stack). A browser without one
is sent to the login page and back.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

DOCS_PREFIX = "/cosmos/"


def _token(request: Request) -> str | None:
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials
    return request.cookies.get(COOKIE_NAME_JWT_TOKEN)


async def signed_in(request: Request) -> bool:
    from airflow.api_fastapi.app import get_auth_manager

    token = _token(request)
    if not token:
        return False
    try:
        await get_auth_manager().get_user_from_token(token)
    except Exception:
        return False
    return True


class DocsSignInRequired(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: Any) -> Response:
        if not request.url.path.startswith(DOCS_PREFIX) or await signed_in(request):
            return await call_next(request)
        if "text/html" in request.headers.get("accept", ""):
            from airflow.api_fastapi.app import get_auth_manager

            return RedirectResponse(
                get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303
            )
        return JSONResponse({"detail": "Not authenticated"}, status_code=401)


class SparkifyPlugin(AirflowPlugin):
    name = "sparkify"
    fastapi_root_middlewares: ClassVar[list[dict[str, Any]]] = [
        {"middleware": DocsSignInRequired, "args": [], "kwargs": {}, "name": "dbt docs: signed-in users only"}
    ]
