"""The executor's dbt warm-up: real dbt, in a process of its own as in the scheduler."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

WARM_UP = (
    "import sys; from sparkify.tuning.dbt_parse import warm_up; from sparkify.settings import settings; "
    "sys.exit(0 if warm_up(settings()) else 3)"
)


def project_files(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in root.rglob("*")
        if p.is_file()
    }


def warm_up(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WARM_UP], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_warm_up_runs_dbt_and_leaves_the_project_and_the_warehouse_alone(tmp_path):
    # A copy of the project, which nothing else running meanwhile writes to (dbt's logs, for one).
    home = tmp_path / "home"
    shutil.copytree(REPO / "dbt_sparkify", home / "dbt_sparkify", ignore=shutil.ignore_patterns("logs"))
    shutil.copy(REPO / "profiles.yml", home / "profiles.yml")
    database = tmp_path / "warehouse.duckdb"
    before = project_files(home / "dbt_sparkify")
    result = warm_up({**os.environ, "SPARKIFY_HOME": str(home), "SPARKIFY_DUCKDB_PATH": str(database)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert project_files(home / "dbt_sparkify") == before, "the warm-up wrote into dbt_sparkify"
    assert not database.exists(), "the warm-up opened the warehouse"


def test_a_failed_warm_up_is_a_warning_not_an_error(tmp_path):
    # A home without the dbt project: dbt fails, the scheduler would go on with dbt cold.
    env = {**os.environ, "SPARKIFY_HOME": str(tmp_path), "SPARKIFY_DUCKDB_PATH": str(tmp_path / "w.duckdb")}
    result = warm_up(env)
    assert result.returncode == 3, result.stderr[-3000:]
    assert "dbt warm-up failed; dbt tasks will start cold" in result.stdout + result.stderr
    assert not Path(tmp_path / "w.duckdb").exists()


FORK_AFTER_WARM_UP = """
import os, shutil, sys, tempfile, time
from pathlib import Path
from sparkify.dbt_run import run_dbt
from sparkify.tuning.dbt_parse import warm_up
from sparkify.settings import from_env

assert warm_up(from_env())
pid = os.fork()
if pid == 0:
    # A task process: a full parse (no partial-parse file), as `dbt docs generate` does into its own target.
    target = Path(tempfile.mkdtemp())
    run_dbt(from_env(), "parse", "--quiet", "--target-path", str(target), "--log-path", str(target))
    os._exit(0 if (target / "manifest.json").is_file() else 4)
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        sys.exit(os.waitstatus_to_exitcode(status))
    time.sleep(0.5)
os.kill(pid, 9)
sys.exit("the forked process hung in dbt")
"""


def test_a_process_forked_after_the_warm_up_runs_a_full_dbt_parse(tmp_path):
    env = {**os.environ, "SPARKIFY_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb")}
    result = subprocess.run(
        [sys.executable, "-c", FORK_AFTER_WARM_UP],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]


SHARED = """
import os, sys
from sparkify import dbt_run as dbt
from sparkify.settings import settings
from sparkify.tuning import dbt_parse

s = settings()
assert dbt_parse.warm_up(s)
os.environ.update({**dbt.dag_dbt_env(s), dbt.RUN_DATE_ENV: "2018-11-01"})  # as Cosmos runs a task
run = ["run", "--select", "dim_users"]
seen = {"task": dbt_parse.shared_manifest(s, run) is not None}
seen["another day"] = (os.environ.update({dbt.RUN_DATE_ENV: "2018-11-02"}) or dbt_parse.shared_manifest(s, run)) is not None
# The run id, which the on-run-end hooks read while a command runs (dbt then adds it to the manifest's env_vars).
os.environ[dbt.RUN_ID_ENV] = "scheduled__2018-11-02"
dbt_parse._PARSED.manifest.env_vars[dbt.RUN_ID_ENV] = "scheduled__2018-11-01"
seen["another run, its id read by a hook"] = dbt_parse.shared_manifest(s, run) is not None
seen["--vars"] = dbt_parse.shared_manifest(s, [*run, "--vars", "{x: 1}"]) is not None
seen["ls"] = dbt_parse.shared_manifest(s, ["ls"]) is not None
os.environ["SPARKIFY_RAW_SCHEMA"] = "elsewhere"
seen["another raw schema"] = dbt_parse.shared_manifest(s, run) is not None
os.environ["SPARKIFY_RAW_SCHEMA"] = s.raw_schema
os.environ["DBT_NEW_VARIABLE"] = "1"
seen["a new dbt variable"] = dbt_parse.shared_manifest(s, run) is not None
del os.environ["DBT_NEW_VARIABLE"]
seen["back as parsed"] = dbt_parse.shared_manifest(s, run) is not None
model = s.dbt_project_dir / "models" / "marts" / "dim_users.sql"
model.write_text(model.read_text() + "\\n")
seen["a model edited"] = dbt_parse.shared_manifest(s, run) is not None
print(seen)
"""


def test_dbt_tasks_use_the_warm_up_parse_only_while_it_is_current(tmp_path):
    """A task runs on the warm-up's parsed project only for a node command, without --vars, while no project
    file and no variable the parse depended on has changed (a copy of the project is edited here)."""
    import ast

    home = tmp_path / "home"
    shutil.copytree(
        REPO / "dbt_sparkify", home / "dbt_sparkify", ignore=shutil.ignore_patterns("target", "logs")
    )
    shutil.copy(REPO / "profiles.yml", home / "profiles.yml")
    env = {**os.environ, "SPARKIFY_HOME": str(home), "SPARKIFY_DUCKDB_PATH": str(tmp_path / "w.duckdb")}
    result = subprocess.run(
        [sys.executable, "-c", SHARED], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = ast.literal_eval(result.stdout.strip().splitlines()[-1])
    assert seen == {
        "task": True,
        "another day": True,
        "another run, its id read by a hook": True,
        "--vars": False,
        "ls": False,
        "another raw schema": False,
        "a new dbt variable": False,
        "back as parsed": True,
        "a model edited": False,
    }


IMPORT_DAGS = """
import sys
from pathlib import Path
from sparkify.tuning.warm import import_dag_modules

assert "sparkify.tuning.watcher" not in sys.modules and "sparkify.warehouses.duckdb" not in sys.modules
print(import_dag_modules(Path(sys.argv[1])))
print(sorted(m for m in ("sparkify.tuning.watcher", "sparkify.warehouses.duckdb", "sparkify.summary") if m in sys.modules))
"""


def test_the_executor_runs_the_dag_files_so_task_processes_find_their_imports_loaded(tmp_path):
    """The project's DAG file runs in the executor's process before it forks (its modules then loaded); a
    broken DAG file next to it is a warning, not a failed executor."""
    shutil.copy(REPO / "airflow" / "dags" / "sparkify_daily.py", tmp_path / "sparkify_daily.py")
    (tmp_path / "broken_dag.py").write_text(
        "# an airflow dag file\nraise RuntimeError('broken on purpose')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_DAGS, str(tmp_path)],
        cwd=REPO,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ran, loaded = result.stdout.strip().splitlines()[-2:]
    assert ran == "['sparkify_daily.py']"
    assert loaded == "['sparkify.summary', 'sparkify.tuning.watcher', 'sparkify.warehouses.duckdb']"
    assert "broken_dag.py failed in the warm-up" in result.stdout + result.stderr
