"""Why a task's try failed, from its log as Airflow's REST API serves it (structured events): the one place both
`make backfill`'s progress and the Sparkify health view read a failure's reason."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote


def task_log_request(
    dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int | None = None
) -> tuple[str, dict[str, str]]:
    """The REST API path (under ``/api/v2``) of one try's whole log, and its query parameters (``map_index`` for
    a mapped task instance): passed apart, since an HTTP client's parameters replace a query left in the path."""
    path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{quote(task_id, safe='')}"
    params = {"full_content": "true"}
    if map_index is not None and map_index >= 0:
        params["map_index"] = str(int(map_index))
    return f"{path}/logs/{int(try_number)}", params


def first_error_line(log: Any) -> str:
    """The first line of the error a try failed with: the exception it raised, else its last error event."""
    events = (log.get("content") or []) if isinstance(log, dict) else []
    for event in reversed(events):
        details = event.get("error_detail") if isinstance(event, dict) else None
        if details:
            raised = [d for d in details if not d.get("is_cause")] or details
            text = f"{raised[-1].get('exc_type')}: {raised[-1].get('exc_value')}"
            return text.strip().splitlines()[0]
    for event in reversed(events):
        if isinstance(event, dict) and event.get("level") in {"error", "critical"}:
            return str(event.get("event", "")).strip().splitlines()[0]
    return "(no error in its log: stopped from outside)"
