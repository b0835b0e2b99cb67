"""One interface per warehouse: each is a module of ``sparkify.warehouses``, and nothing else picks one by name."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

from sparkify.settings import from_env
from sparkify.warehouses import MODULES, NAMES, Warehouse, warehouse_for
from tests.conftest import REPO

# Where code that runs the pipeline lives (the warehouses' own package aside).
CODE = [REPO / "src" / "sparkify", REPO / "airflow" / "dags", REPO / "benchmarks"]
WAREHOUSES_PACKAGE = REPO / "src" / "sparkify" / "warehouses"


@pytest.mark.parametrize("name", NAMES)
def test_each_warehouse_is_one_module_implementing_the_interface(name):
    module = importlib.import_module(MODULES[name])
    cls = module.WAREHOUSE
    assert issubclass(cls, Warehouse) and cls.name == name
    assert not inspect.isabstract(cls), f"{cls.__name__} leaves {sorted(cls.__abstractmethods__)} undone"
    assert Path(module.__file__) == WAREHOUSES_PACKAGE / f"{name}.py"


@pytest.mark.parametrize("name", NAMES)
def test_the_settings_pick_the_warehouse_once(name, tmp_path):
    lake = "s3://bucket/lake" if name == "redshift" else str(tmp_path)
    settings = from_env({"SPARKIFY_WAREHOUSE": name, "SPARKIFY_LAKE": lake, "SPARKIFY_HOME": str(REPO)})
    warehouse = warehouse_for(settings)
    assert warehouse.name == name and warehouse_for(settings) is warehouse
    assert warehouse.describe()


def test_the_default_duckdb_file_is_described_from_the_checkout(tmp_path):
    inside = from_env({"SPARKIFY_HOME": str(REPO), "SPARKIFY_LAKE": str(tmp_path)})
    assert warehouse_for(inside).describe() == "the DuckDB file .local/sparkify.duckdb"
    outside = from_env(
        {
            "SPARKIFY_HOME": str(REPO),
            "SPARKIFY_LAKE": str(tmp_path),
            "SPARKIFY_DUCKDB_PATH": str(tmp_path / "w.duckdb"),
        }
    )
    assert warehouse_for(outside).describe() == f"the DuckDB file {tmp_path / 'w.duckdb'}"


def _name_comparisons(path: Path, root: Path = REPO) -> list[str]:
    """Comparisons of a ``.warehouse`` attribute, or of a warehouse's name as a string, in one file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        by_attribute = any(isinstance(o, ast.Attribute) and o.attr == "warehouse" for o in operands)
        by_name = any(isinstance(o, ast.Constant) and o.value in NAMES for o in operands)
        if by_attribute or by_name:
            found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_code_outside_the_warehouses_package_compares_the_warehouse_name():
    files = [
        path for folder in CODE for path in folder.rglob("*.py") if WAREHOUSES_PACKAGE not in path.parents
    ]
    assert len(files) > 20
    comparisons = [line for path in files for line in _name_comparisons(path)]
    assert comparisons == [], "ask the configured Warehouse instead:\n" + "\n".join(comparisons)


def test_the_check_finds_a_comparison(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('if settings.warehouse == "duckdb":\n    pass\nif "redshift" != other:\n    pass\n')
    assert len(_name_comparisons(sample, tmp_path)) == 2
