"""What the watcher build hands to Cosmos' XCom parser: dbt's JSON log lines, as dbt writes them."""

from __future__ import annotations

import json

from sparkify.tuning.watcher import TEST_FINISHED, failed_test, lean


def line(name: str, resource_type: str | None = None, unique_id: str = "", status: str = "success") -> str:
    event = {"info": {"name": name, "msg": f"{name} message", "level": "info"}, "data": {}}
    if resource_type:
        event["data"]["node_info"] = {
            "resource_type": resource_type,
            "unique_id": unique_id,
            "node_status": status,
        }
    return json.dumps(event)


def test_progress_events_of_a_node_are_dropped():
    for name in ("NodeStart", "NodeCompiling", "NodeExecuting"):
        assert lean(line(name, "model", "model.sparkify.dim_users", "started"), frozenset()) is None


def test_a_finished_test_keeps_its_status_but_not_its_event_name():
    test = "test.sparkify.not_null_dim_users_user_id.1"
    kept = json.loads(lean(line("NodeFinished", "test", test, "fail"), frozenset()))
    assert kept["info"]["name"] == TEST_FINISHED
    assert kept["data"]["node_info"] == {"resource_type": "test", "unique_id": test, "node_status": "fail"}
    assert kept["info"]["msg"] == "NodeFinished message"


def test_a_detached_test_and_other_nodes_keep_their_event():
    detached = "test.sparkify.relationships_fct_songplays_song_id.2"
    for original in (
        line("NodeFinished", "test", detached, "pass"),
        line("NodeFinished", "model", "model.sparkify.dim_users"),
        line("NodeFinished", "unit_test", "unit_test.sparkify.dim_time.parts"),
        line("LogTestResult", "test", "test.sparkify.x.3", "fail"),
        line("MainReportVersion"),
        "a line that is not JSON",
    ):
        assert lean(original, frozenset({detached})) == original


def test_only_a_test_that_ran_and_failed_is_a_failed_test():
    test = "test.sparkify.accepted_values_stg_sparkify__events_level"
    assert failed_test(line("NodeFinished", "test", test, "fail")) == test
    assert failed_test(lean(line("NodeFinished", "test", test, "fail"), frozenset())) == test  # renamed
    for status in ("error", "skipped", "pass", "warn"):
        assert failed_test(line("NodeFinished", "test", test, status)) is None
    assert failed_test(line("NodeFinished", "model", "model.sparkify.dim_users", "fail")) is None
    assert failed_test(line("NodeStart", "test", test, "fail")) is None
    assert failed_test("not json") is None
