"""The one home for deviations from stock libraries: every private name they touch is checked here, nothing
outside ``sparkify.tuning`` touches one, and on other versions the pipeline runs stock."""

from __future__ import annotations

import ast
import importlib
import inspect
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sparkify import tuning
from tests.conftest import REPO

LIBRARIES = ("cosmos", "airflow", "dbt")
CODE = [REPO / "src" / "sparkify", REPO / "airflow" / "dags", REPO / "benchmarks"]
TUNING = REPO / "src" / "sparkify" / "tuning"


def resolve(target: str):
    module_name, qualname = target.split(":")
    obj = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize(
    ("patch", "target"),
    [(patch, target) for patch in tuning.PATCHES for target in patch.private_names],
    ids=lambda value: value if isinstance(value, str) else value.name,
)
def test_every_private_name_a_patch_touches_is_there_with_its_signature(patch, target):
    expected = patch.private_names[target]
    try:
        obj = resolve(target)
    except (ImportError, AttributeError) as error:
        pytest.fail(f"patch {patch.name} ({patch.module}): {target} is gone ({error}); update the patch")
    if expected:
        found = tuple(inspect.signature(obj).parameters)
        assert found == expected, (
            f"patch {patch.name} ({patch.module}): {target} now takes {found}, the patch was written for "
            f"{expected}; update the patch"
        )


def test_the_pinned_libraries_are_those_the_patches_were_written_for():
    assert [(patch.name, tuning.mismatches(patch)) for patch in tuning.PATCHES] == [
        (patch.name, []) for patch in tuning.PATCHES
    ]
    for patch in tuning.PATCHES:
        importlib.import_module(patch.module)


def private_uses(path: Path, root: Path = REPO) -> list[str]:
    """Imports of a private name (a leading underscore anywhere in the dotted name) from Cosmos, Airflow or
    dbt, and assignments into their modules (a monkeypatch), in one file."""
    found = []

    def library(dotted: str) -> bool:
        return dotted.split(".")[0] in LIBRARIES

    def private(dotted: str) -> bool:
        return any(part.startswith("_") and not part.endswith("__") for part in dotted.split("."))

    tree = ast.parse(path.read_text(), str(path))
    # Names bound to a library's module in this file (`import cosmos.dbt.runner` binds `cosmos`).
    modules = {
        (alias.asname or alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if library(alias.name)
    }
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if library(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and library(node.module):
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and ast.unparse(target).split(".")[0] in modules:
                    found.append(f"{path.relative_to(root)}:{node.lineno}: assigns {ast.unparse(target)}")
        found += [
            f"{path.relative_to(root)}:{node.lineno}: imports {name}" for name in names if private(name)
        ]
    return found


def test_no_module_outside_the_tuning_package_touches_a_private_name():
    files = [path for folder in CODE for path in folder.rglob("*.py") if TUNING not in path.parents]
    assert len(files) > 20
    found = [use for path in files for use in private_uses(path)]
    assert found == [], "move it into sparkify.tuning, with its versions:\n" + "\n".join(found)


def test_the_check_finds_private_imports_and_monkeypatches(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from cosmos.operators._watcher.base import BaseConsumerSensor\n"
        "from airflow.models import _private\n"
        "import dbt._internal\n"
        "from dbt.version import __version__\n"
        "airflow = object()\n"
        "airflow.held = True\n"
        "import cosmos.dbt.runner\n"
        "cosmos.dbt.runner.get_runner = None\n"
        "from airflow.sdk import task\n"
    )
    assert len(private_uses(sample, tmp_path)) == 4


def test_another_version_turns_every_patch_off_with_one_warning(monkeypatch, caplog):
    monkeypatch.setattr(
        tuning, "installed", lambda name: "1.16.0" if name == "astronomer-cosmos" else "3.3.2"
    )
    tuning._versions_match.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="sparkify.tuning"):
            assert [tuning.active(), tuning.active(), tuning.active(True)] == [False, False, False]
        warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "astronomer-cosmos 1.16.0 (written for >=1.15,<1.16)" in warnings[0]
        assert "stock" in warnings[0]
    finally:
        tuning._versions_match.cache_clear()


STOCK_DAG = """
import logging, sys
logging.basicConfig(level=logging.INFO)
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder=sys.argv[1]).dags["sparkify_daily"]
for task in dag.tasks:
    if task.task_id.startswith("dbt_sparkify."):
        print(task.task_id, type(task).__module__, type(task).__name__, task.pool, getattr(task, "deferrable", None),
              getattr(task, "poke_interval", None))
"""


def test_with_the_tuning_off_the_dag_is_stock_cosmos_through_its_public_arguments(tmp_path):
    env = {
        **os.environ,
        "SPARKIFY_TUNING": "off",
        "SPARKIFY_DUCKDB_PATH": str(tmp_path / "w.duckdb"),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    result = subprocess.run(
        [sys.executable, "-c", STOCK_DAG, str(REPO / "airflow" / "dags")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sparkify.tuning is off (SPARKIFY_TUNING=off)" in result.stdout + result.stderr
    tasks = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if " cosmos." in line}
    assert len(tasks) >= 18
    assert all(module.startswith("cosmos.operators") for module, *_ in tasks.values())
    producer = tasks.pop("dbt_sparkify.dbt_producer_watcher")
    assert producer[1:3] == ["DbtProducerWatcherOperator", "sparkify_duckdb"]
    done = tasks.pop("dbt_sparkify.dbt_producer_watcher_done", None)
    assert done is None or done[2] == "sparkify_duckdb"
    # A test between two models runs with its models' tests: Cosmos pushes no result for a detached one.
    assert not [task for task in tasks if task.startswith("dbt_sparkify.relationships_")]
    # The sensors poke every second outside the writer pool, as in the tuned DAG: no triggerer needed.
    assert {tuple(values[2:]) for values in tasks.values()} == {("default_pool", "False", "1.0")}
