"""The REST API of a local Airflow, as an operator would use it: logged in as the admin, DAG runs and
backfills of the project's DAG."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import httpx

from sparkify.local_airflow.config import ADMIN_USER, admin_password
from sparkify.local_airflow.processes import AirflowStartError
from sparkify.run_days import interval

DAG_ID = "sparkify_daily"
# Scheduled on the marts' asset events that DAG_ID's runs emit.
REPORT_DAG_ID = "sparkify_listening_report"
TERMINAL_RUN_STATES = {"success", "failed"}


class AirflowApi:
    """The api-server's REST API (attributes of ``LocalAirflow``: home, port, _token)."""

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def check_alive(self) -> None:
        """Raise if what answers the API has died (``AirflowProcesses`` checks its processes)."""
        return None

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

    def auth_headers(self) -> dict[str, str]:
        """The signed-in admin's bearer token, for the REST API and the dbt docs."""
        if self._token is None:
            self._token = self._login()
        return {"Authorization": f"Bearer {self._token}"}

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.auth_headers(), **kwargs.pop("headers", {})}
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

    def wait_ready(self, timeout: float = 180, parsed_since: datetime | None = None) -> None:
        """Until the api-server answers and the dag-processor has serialized the DAG (since ``parsed_since``,
        when given: a home used before holds the DAGs as the last start parsed them, with another warehouse's
        assets and pools, perhaps)."""
        self.wait_until(
            "the api-server",
            lambda: httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).is_success,
            timeout,
        )
        for dag_id in (DAG_ID, REPORT_DAG_ID):
            self.wait_until(
                f"DAG {dag_id} to be parsed",
                lambda dag_id=dag_id: self._dag_parsed(dag_id, parsed_since),
                timeout,
            )

    def _dag_parsed(self, dag_id: str = DAG_ID, since: datetime | None = None) -> bool:
        try:
            details = self.api("GET", f"/dags/{dag_id}/details")
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
        return since is None or datetime.fromisoformat(details["last_parsed_time"]) >= since

    def wait_reports_done(
        self, since: datetime, timeout: float = 120, quiet: float = 5
    ) -> list[dict[str, Any]]:
        """Until the report DAG has had no queued or running run for ``quiet`` seconds (its runs start on the
        asset events of the last daily runs); its runs since ``since`` (those the caller's runs started), newest
        first."""
        deadline = time.monotonic() + timeout
        idle_since = time.monotonic()
        params = {"order_by": "-run_after", "limit": 100, "run_after_gte": since.isoformat()}
        while time.monotonic() < deadline:
            runs = self.api("GET", f"/dags/{REPORT_DAG_ID}/dagRuns", params=params)["dag_runs"]
            if any(run["state"] in ("queued", "running") for run in runs):
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= quiet:
                return runs
            time.sleep(2)
        return runs

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
        """Wait for the scheduler to mark a finished backfill complete (every 30 s on stock Airflow, every
        ``sparkify.tuning.executor.BACKFILL_CHECK_SECONDS`` with the project's executor). One stopped before that
        is still active at the next start, which cancels it, and cancelling pauses it: Airflow never starts a run
        of a paused backfill again, so clearing one of its runs in the UI would leave the run queued for good.
        False if the scheduler has not marked it within ``timeout``."""
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

    def unpause(self) -> None:
        """Let the scheduler run the DAG's runs, and the report DAG's that their asset events start."""
        for dag_id in (DAG_ID, REPORT_DAG_ID):
            self.while_busy(
                lambda dag_id=dag_id: self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
            )

    def create_range_run(self, first: date, last: date) -> dict[str, Any]:
        """A run of the DAG over ``first`` .. ``last`` (its data interval), its logical date the first day. A run
        already at that logical date (an earlier backfill of the day) is replaced: Airflow keeps one run per
        logical date."""
        start, end = interval(first, last)
        existing = self.while_busy(lambda: self.runs(first.isoformat(), first.isoformat()))
        for run in existing:
            path = f"/dags/{DAG_ID}/dagRuns/{quote(run['dag_run_id'], safe='')}"
            self.while_busy(lambda path=path: self.api("DELETE", path))
        days = (last - first).days + 1
        body = {
            "dag_run_id": f"range__{first}_{last}__{datetime.now(UTC):%Y%m%dT%H%M%S}",
            "logical_date": start.isoformat(),
            "data_interval_start": start.isoformat(),
            "data_interval_end": end.isoformat(),
            "conf": {},
            "note": f"{first} .. {last} ({days} day{'s' if days > 1 else ''})",
        }
        return self.while_busy(lambda: self.api("POST", f"/dags/{DAG_ID}/dagRuns", json=body))

    def mark_failed(self, run_id: str) -> None:
        """Fail a run that is queued or running (Airflow stops its tasks)."""
        path = f"/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}"
        self.while_busy(lambda: self.api("PATCH", path, json={"state": "failed"}))

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

    def tries(self, run_id: str, task_id: str, map_index: int = -1) -> list[dict[str, Any]]:
        """Every try of a task instance so far (the earlier ones from its history), oldest first."""
        path = f"/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}"
        path += f"/{int(map_index)}/tries" if map_index >= 0 else "/tries"
        return sorted(self.api("GET", path)["task_instances"], key=lambda ti: ti["try_number"])

    def moved_elsewhere(self, lost: dict[str, Any]) -> dict[str, Any] | None:
        """The task instance ``lost`` (as the API listed it, on a worker that died) once a later try of it runs or
        ran on another host, else None."""
        path = f"/dags/{DAG_ID}/dagRuns/{lost['dag_run_id']}/taskInstances/{lost['task_id']}"
        ti = self.api("GET", path)
        moved = ti["try_number"] > lost["try_number"] and ti["hostname"] not in ("", None, lost["hostname"])
        return ti if moved and ti["state"] in ("running", "success") else None

    def finished_runs(self, start: str, end: str, expected: int) -> list[dict[str, Any]] | None:
        """The runs of [start, end] once there are ``expected`` of them and all have finished, else None."""
        runs = self.runs(start, end)
        if len(runs) == expected and all(run["state"] in TERMINAL_RUN_STATES for run in runs):
            return runs
        return None

    def wait_runs_finished(self, start: str, end: str, expected: int, timeout: float) -> list[dict[str, Any]]:
        """The runs of [start, end], once all ``expected`` have finished; on timeout, an error describing them."""
        return self.wait_until(
            "every run to finish",
            lambda: self.finished_runs(start, end, expected),
            timeout=timeout,
            interval=3,
            describe=lambda: self.describe_runs(start, end),
        )

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
