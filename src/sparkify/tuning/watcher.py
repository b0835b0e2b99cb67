"""Patch: Cosmos' watcher mode, tuned for a daily run of many small nodes (written for Cosmos 1.15).

One producer task runs ``dbt build``; every model, model's tests, detached test and source keeps its own Airflow
task, a sensor that reports its node's result from the producer's XComs (and, when retried or cleared, runs its
node with dbt itself). The sensors poke instead of deferring through Cosmos' public arguments
(``sparkify.dbt.WATCHER_OPERATOR_ARGS``); this module changes Cosmos' classes in three ways (what each buys:
docs/performance.md), applied by ``tune`` through ``sparkify.tuning.tune_task_group`` only:

- The producer pushes only the XComs a sensor reads: each node's final dbt event (not its start, compiling and
  executing events, which overwrote the same key three more times) and not for tests, whose events no sensor
  reads. Each push is a round trip through the task's supervisor to the API server.
- A test detached from its models (a relationships test between two models) has its own result pushed under
  the key its sensor reads; Cosmos pushes test results only per model, so such a sensor never had one.
- A cleared build builds again. Cosmos skips any try of its producer after the first (a second build must not
  follow a failed one's retry); the first try after a clear (a backfill reprocessing a finished day, a whole
  run cleared) is not a retry, and rebuilding is one dbt command where its sensors would otherwise run about
  thirty. A sensor's first try after a clear reads the build only once the build of that clear has started
  (it records the run's clear number): until then the XComs still hold the previous build's results. Any
  other later try (a retry, or a sensor cleared without its build) waits for the build to end, then runs its
  node with dbt, as Cosmos' sensors do on a retry.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from cosmos.operators._watcher.base import BaseConsumerSensor
from cosmos.operators._watcher.state import is_producer_task_terminated
from cosmos.operators.watcher import (
    DbtProducerWatcherOperator,
    DbtRunWatcherOperator,
    DbtSourceWatcherOperator,
    DbtTestWatcherOperator,
)

log = logging.getLogger(__name__)

# dbt events of a node that no sensor reads: each would be one more XCom push of the node's "dbt event".
UNREAD_NODE_EVENTS = frozenset({"NodeStart", "NodeCompiling", "NodeExecuting"})

# Not one of the dbt events whose "dbt event" Cosmos' parser pushes (its allow-list); nothing else reads the name.
TEST_FINISHED = "NodeFinishedTest"


def lean(line: str, own_event_tests: frozenset[str]) -> str | None:
    """A dbt JSON log line as the producer's parser should see it: ``None`` for a node's progress events, and
    a test's final event renamed so the parser takes its status but pushes no "dbt event" for it (only a
    detached test's sensor reads its own event)."""
    try:
        event = json.loads(line)
    except ValueError:
        return line
    if not isinstance(event, dict):
        return line
    info = event.get("info") or {}
    name = info.get("name")
    if name in UNREAD_NODE_EVENTS:
        return None
    node = (event.get("data") or {}).get("node_info") or {}
    if (
        name == "NodeFinished"
        and node.get("resource_type") == "test"
        and node.get("unique_id") not in own_event_tests
    ):
        info["name"] = TEST_FINISHED
        return json.dumps(event)
    return line


def failed_test(line: str) -> str | None:
    """The unique id of the test whose final event ``line`` is, when that test ran and failed (dbt's status
    ``fail``: its query returned rows). Not a test that could not run (``error``), nor one skipped because
    something upstream failed, both of which Cosmos reports to the sensors as failed too."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or (event.get("info") or {}).get("name") not in {
        "NodeFinished",
        TEST_FINISHED,
    }:
        return None
    node = (event.get("data") or {}).get("node_info") or {}
    if node.get("resource_type") == "test" and node.get("node_status") == "fail":
        return node.get("unique_id")
    return None


# The producer's XCom, per model (or detached test), when one of its tests ran and failed in the build.
TEST_FAILED_KEY = "sparkify_test_failed__"
# The producer's XCom with its run's clear number when its build started: the build of a run cleared N times.
BUILD_CLEAR_NUMBER_KEY = "sparkify_build_clear_number"
# Producer states in which its XComs are its latest build's (Airflow clears a task's XComs as a try starts).
BUILD_STARTED_STATES = frozenset({"running", "success", "failed"})


def first_try_after_clear(ti: Any) -> bool:
    """Whether this try is the first since its task was cleared, rather than a retry: clearing gives a task
    ``max_tries = last try + retries``, so the first try of a clear is ``max_tries - retries + 1`` (as Airflow's
    task runner computes it)."""
    return ti.try_number > 1 and ti.try_number == ti.max_tries - (ti.task.retries or 0) + 1


def clear_number(context: Any) -> int:
    return context["dag_run"].clear_number or 0


class DbtBuildProducer(DbtProducerWatcherOperator):
    """Cosmos' watcher producer, pushing only what the sensors read, and building again when cleared."""

    def execute(self, context: Any, **kwargs: Any) -> Any:
        ti = context["ti"]
        if not (ti.try_number == 1 or first_try_after_clear(ti)):
            return super().execute(context, **kwargs)  # a retry: Cosmos skips it, the sensors run their nodes
        ti.xcom_push(key=BUILD_CLEAR_NUMBER_KEY, value=clear_number(context))
        if ti.try_number == 1:
            return super().execute(context, **kwargs)
        log.info("Try %s is the first since the run was cleared, not a retry: building again", ti.try_number)
        try_number, ti.try_number = ti.try_number, 1  # Cosmos skips every try but the first
        try:
            return super().execute(context, **kwargs)
        finally:
            ti.try_number = try_number

    def _make_parse_callable(self) -> Callable[[str, Any], None]:
        parse = super()._make_parse_callable()
        # Detached tests are their own "model" in tests_per_model (see ``tune``).
        own_event_tests = frozenset(uid for uid, tests in self.tests_per_model.items() if tests == [uid])

        def parse_lean(line: str, extra_kwargs: Any) -> None:
            if (kept := lean(line, own_event_tests)) is not None:
                parse(kept, extra_kwargs)
                if (test := failed_test(kept)) is not None:
                    ti = extra_kwargs["context"]["ti"]
                    for model, tests in self.tests_per_model.items():
                        if test in tests:
                            ti.xcom_push(key=TEST_FAILED_KEY + model, value=test)

        return parse_lean


class _ReadsItsClear:
    """A watcher sensor that tells a first try after a clear from a retry."""

    _reads_build = False

    def poke(self, context: Any) -> bool:
        """A first try reports the node's result from the run's build (Cosmos), and so does the first try after
        a clear once the build of that clear has started. Any other later try (a retry, or the task cleared
        without its build) runs the node itself once the build is over, never reading the build's XComs: they
        hold the results of a build that ran before this try's data was cleared. (Clearing without resetting
        the run, ``reset_dag_runs: false``, leaves its clear number as it was: a try could then read the previous
        build's results in the moment between the build task starting and it clearing its XComs. The UI, the
        API's default and backfills reset the run.)"""
        ti = context["ti"]
        if ti.try_number == 1:
            return super().poke(context)
        state = self._get_producer_task_status(context)
        if first_try_after_clear(ti) and state in BUILD_STARTED_STATES:
            built_for = ti.xcom_pull(task_ids=self.producer_task_id, key=BUILD_CLEAR_NUMBER_KEY)
            if built_for == clear_number(context):
                self._reads_build = True
                return super().poke(context)
        if not is_producer_task_terminated(state):
            log.info(
                "Try %s: waiting for the run's dbt build (%s) to end, then running the node",
                ti.try_number,
                state,
            )
            return False
        return self._fallback_to_non_watcher_run(ti.try_number, context)

    def _handle_retry(self, try_number: int, producer_task_state: str | None, context: Any) -> bool | None:
        # Cosmos' poke treats every try after the first as a retry; one reading its clear's build is not.
        if self._reads_build:
            return None
        return super()._handle_retry(try_number, producer_task_state, context)


class DbtRunSensor(_ReadsItsClear, DbtRunWatcherOperator):
    """The result of a model in the producer's build."""


class DbtTestSensor(_ReadsItsClear, DbtTestWatcherOperator):
    """The result of a model's tests, or of a detached test, in the producer's build. When one of them ran and
    failed in the build the sensor reads (dbt's status ``fail``: its query returned rows), the task fails
    without retries: the data stays as it is until someone fixes it. Any other failed result keeps the retries:
    a test that could not run (``error``: a warehouse down), or one the build skipped after an upstream failure
    (a task cleared after the fix then runs its node itself on its retry)."""

    def poke(self, context: Any) -> bool:
        from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

        try:
            return super().poke(context)
        except (AirflowFailException, AirflowSkipException):
            raise
        except AirflowException as error:
            ti = context["ti"]
            failed = ti.xcom_pull(task_ids=self.producer_task_id, key=TEST_FAILED_KEY + self.model_unique_id)
            if failed:
                raise AirflowFailException(
                    f"{error}: {failed} failed; a failing data test is not retried: fix the data, then clear "
                    "this task"
                ) from error
            raise


class DbtSourceSensor(_ReadsItsClear, DbtSourceWatcherOperator):
    """The freshness of a source, checked by the producer before its build."""


SENSOR_CLASSES = {
    DbtRunWatcherOperator: DbtRunSensor,
    DbtTestWatcherOperator: DbtTestSensor,
    DbtSourceWatcherOperator: DbtSourceSensor,
}


def tune(tasks: Iterator[Any]) -> None:
    """Turn the watcher tasks Cosmos rendered into this module's classes (same arguments, same task ids)."""
    producer = None
    detached_tests = []
    for task in tasks:
        if type(task) is DbtProducerWatcherOperator:
            task.__class__ = DbtBuildProducer
            producer = task
        elif type(task) in SENSOR_CLASSES:
            task.__class__ = SENSOR_CLASSES[type(task)]
            if isinstance(task, DbtTestSensor) and task.model_unique_id.startswith("test."):
                detached_tests.append(task.model_unique_id)
        elif isinstance(task, BaseConsumerSensor):
            raise TypeError(f"{task.task_id}: watcher sensor {type(task).__name__} not tuned")
    if producer is not None:
        for test in detached_tests:
            producer.tests_per_model.setdefault(test, [test])
