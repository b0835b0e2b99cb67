"""Which failures Airflow retries: the project's deterministic ones become its non-retryable failure, with the
cause and its message kept; anything else (a warehouse or lake that does not answer) passes through unchanged."""

from __future__ import annotations

import psycopg2
import pytest
from airflow.sdk.exceptions import AirflowFailException

from sparkify.alerts import no_retry
from sparkify.lake import LakeError
from sparkify.staging.rules import BadInputError


@pytest.mark.parametrize(
    "error", [BadInputError("3 of 10 lines are bad"), LakeError("no event log for 2018-11-03")]
)
def test_deterministic_failures_are_not_retried(error):
    with pytest.raises(AirflowFailException) as raised, no_retry():
        raise error
    assert raised.value.__cause__ is error
    assert str(raised.value) == f"{type(error).__name__}: {error} (not retried: waiting cannot fix it)"


@pytest.mark.parametrize("error", [psycopg2.OperationalError("connection refused"), TimeoutError("lake")])
def test_transient_failures_keep_their_retries(error):
    with pytest.raises(type(error)) as raised, no_retry():
        raise error
    assert raised.value is error
