"""Failure alerts: one structured log line per failed task, and an optional notification through an Airflow
notifier chosen by a connection.

Every task of the DAG gets ``on_failure`` as its failure callback (after its last retry). It always logs one line,
``SPARKIFY_ALERT {json}`` with the DAG, run, task, try, error and log URL, into the task's own log (the log sink:
whatever ships Airflow's task logs ships the alerts). With ``SPARKIFY_ALERT_CONN_ID`` naming an Airflow connection,
it also notifies through that connection:

- ``smtp`` connections: an e-mail through the SMTP provider's ``SmtpNotifier`` to the addresses in the
  connection's ``to`` extra (comma-separated).

A scheduled run that misses its deadline sends one alert the same way (``sparkify.deadline``).

Alerting is off by default; a notification that fails is logged and never hides the task's own error.

A failure that waiting cannot fix (bad input over the allowance, a day's file missing from the lake, a failing
data test) is raised as Airflow's non-retryable failure (``no_retry``): the task fails at once, alerted once.
Anything else (a warehouse or a lake that does not answer) keeps the task's retries.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

ALERT_PREFIX = "SPARKIFY_ALERT"


def alert_of(context: dict[str, Any]) -> dict[str, object]:
    ti = context["ti"]
    error = context.get("exception")
    return {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": getattr(ti, "map_index", -1),
        "try_number": ti.try_number,
        "logical_date": str(context.get("logical_date")),
        "error": f"{type(error).__name__}: {error}"[:2000] if error is not None else None,
        "log_url": getattr(ti, "log_url", None),
    }


def _notify(conn_id: str, alert: dict[str, object], context: dict[str, Any], subject: str) -> None:
    from airflow.sdk import BaseHook

    connection = BaseHook.get_connection(conn_id)
    if connection.conn_type != "smtp":
        raise ValueError(f"alert connection {conn_id!r} has type {connection.conn_type!r}; supported: smtp")
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    recipients = [address.strip() for address in str(connection.extra_dejson.get("to", "")).split(",")]
    if not any(recipients):
        raise ValueError(f"alert connection {conn_id!r} has no 'to' extra (the recipients)")
    notifier = SmtpNotifier(
        to=[address for address in recipients if address],
        smtp_conn_id=conn_id,
        subject=subject,
        html_content="<pre>" + json.dumps(alert, indent=2, sort_keys=True) + "</pre>",
    )
    notifier.notify(context)


def on_failure(context: dict[str, Any]) -> None:
    """The DAG's failure callback."""
    alert = alert_of(context)
    send(alert, context, f"[sparkify] {alert['dag_id']} {alert['run_id']}: {alert['task_id']} failed")


def send(alert: dict[str, object], context: dict[str, Any], subject: str) -> None:
    """Log the alert line and, with ``SPARKIFY_ALERT_CONN_ID`` set, notify through that connection."""
    log.error("%s %s", ALERT_PREFIX, json.dumps(alert, sort_keys=True, default=str))
    conn_id = os.environ.get("SPARKIFY_ALERT_CONN_ID")
    if not conn_id:
        return
    try:
        _notify(conn_id, alert, context, subject)
        log.info("alert sent through connection %s", conn_id)
    except Exception as error:  # an unreachable notifier must not hide the task's own failure
        log.error("alert through connection %s failed: %s", conn_id, error)


@contextmanager
def no_retry() -> Iterator[None]:
    """Turn the project's deterministic failures raised inside into Airflow's non-retryable failure."""
    from airflow.sdk.exceptions import AirflowFailException

    from sparkify.lake import LakeError
    from sparkify.staging.rules import BadInputError

    try:
        yield
    except (BadInputError, LakeError) as error:
        raise AirflowFailException(
            f"{type(error).__name__}: {error} (not retried: waiting cannot fix it)"
        ) from error
