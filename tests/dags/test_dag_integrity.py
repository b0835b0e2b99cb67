"""Every DAG in the folder imports cleanly and carries the conventions the team relies on."""

from __future__ import annotations


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert dagbag.dag_ids == ["sparkify_daily", "sparkify_listening_report"]


def test_every_dag_has_tags_docs_and_retries(dagbag):
    for dag in dagbag.dags.values():
        assert dag.tags, dag.dag_id
        assert dag.doc_md and dag.doc_md.strip().startswith("###"), dag.dag_id
        for task in dag.tasks:
            assert task.retries >= 1, task.task_id
