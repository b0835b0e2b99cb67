"""Cosmos' watcher mode, tuned for a daily run of many small nodes.

One producer task runs ``dbt build``; every model, model's tests, detached test and source keeps its own Airflow
task, a sensor that reports its node's result from the producer's XComs (and, when retried or cleared, runs its
node with dbt itself). Four changes to Cosmos' classes (the reasons and numbers: docs/BENCHMARKS.md):

- Sensors poke on a worker instead of deferring: a deferred sensor costs two task processes and the
  triggerer's loops (about 3 s per level of the graph), a poking one a single process that usually finds its
  node's result at the first poke, since it starts only once its upstream tasks succeeded.
- The producer pushes only the XComs a sensor reads: each node's final dbt event (not its start, compiling and
  executing events, which overwrote the same key three more times) and not for tests, whose events no sensor
  reads. Each push is a round trip through the task's supervisor to the API server.
- A test detached from its models (a relationships test between two models) has its own result pushed under
  the key its sensor reads; Cosmos pushes test results only per model, so such a sensor never had one.
- A sensor's later try (a retry, its task or its run cleared) never reads the build's XComs, which still hold
  the previous try's results until a cleared build starts again: it waits for the build to end, then runs its
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


class DbtBuildProducer(DbtProducerWatcherOperator):
    """Cosmos' watcher producer, pushing only what the sensors read."""

    def _make_parse_callable(self) -> Callable[[str, Any], None]:
        parse = super()._make_parse_callable()
        # Detached tests are their own "model" in tests_per_model (see ``tune``).
        own_event_tests = frozenset(uid for uid, tests in self.tests_per_model.items() if tests == [uid])

        def parse_lean(line: str, extra_kwargs: Any) -> None:
            if (kept := lean(line, own_event_tests)) is not None:
                parse(kept, extra_kwargs)

        return parse_lean


class _Poking:
    """A watcher sensor that pokes on a worker: one process, no triggerer round trips. (Not in reschedule mode:
    Airflow 3 counts each reschedule as a new try, which Cosmos' sensor takes for a retry and answers by running
    its node itself.) Only a source's sensor can start before its run's build does; each holds a worker slot
    while it waits, so the executor needs more than two slots per run waiting for its build (the DAG runs one
    at a time by default)."""

    def configure(self, poke_interval: float) -> None:
        self.deferrable = False
        self.poke_interval = poke_interval
        self.pool = "default_pool"

    def poke(self, context: Any) -> bool:
        """A first try reports the node's result from the run's build (Cosmos). A later try (a retry, or the
        task or its whole run cleared) runs the node itself once the build is over, never reading the build's
        XComs: until a cleared build starts again they still hold the previous try's results."""
        ti = context["ti"]
        if ti.try_number == 1:
            return super().poke(context)
        state = self._get_producer_task_status(context)
        if not is_producer_task_terminated(state):
            log.info(
                "Try %s: waiting for the run's dbt build (%s) to end, then running the node",
                ti.try_number,
                state,
            )
            return False
        return self._fallback_to_non_watcher_run(ti.try_number, context)


class DbtRunSensor(_Poking, DbtRunWatcherOperator):
    """The result of a model in the producer's build."""


class DbtTestSensor(_Poking, DbtTestWatcherOperator):
    """The result of a model's tests, or of a detached test, in the producer's build."""


class DbtSourceSensor(_Poking, DbtSourceWatcherOperator):
    """The freshness of a source, checked by the producer before its build."""


SENSOR_CLASSES = {
    DbtRunWatcherOperator: DbtRunSensor,
    DbtTestWatcherOperator: DbtTestSensor,
    DbtSourceWatcherOperator: DbtSourceSensor,
}


def tune(tasks: Iterator[Any], poke_interval: float) -> None:
    """Turn the watcher tasks Cosmos rendered into this module's classes (same arguments, same task ids)."""
    producer = None
    detached_tests = []
    for task in tasks:
        if type(task) is DbtProducerWatcherOperator:
            task.__class__ = DbtBuildProducer
            producer = task
        elif type(task) in SENSOR_CLASSES:
            task.__class__ = SENSOR_CLASSES[type(task)]
            task.configure(poke_interval)
            if isinstance(task, DbtTestSensor) and task.model_unique_id.startswith("test."):
                detached_tests.append(task.model_unique_id)
        elif isinstance(task, BaseConsumerSensor):
            raise TypeError(f"{task.task_id}: watcher sensor {type(task).__name__} not tuned")
    if producer is not None:
        for test in detached_tests:
            producer.tests_per_model.setdefault(test, [test])
