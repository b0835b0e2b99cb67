"""Every documented command, run as a reader runs it: in one fresh copy of the repository (its own .venv, lake,
Airflow home and DuckDB file, installed by the Makefile as on a new machine), in the order the reader meets it
(tests/documented.py), each block as one bash script.

Its path through the docs is the one issue #27 found broken: `make demo` on DuckDB, the PostgreSQL backfill of
docs/warehouses.md in the same Airflow home, then docs/operations.md's backfill on DuckDB again. Every run
succeeds, and each backfill's summary counts the listening reports its own days started.

The commands are the docs' own, with these changes only, each through a variable the docs document:
- ranges end on SHORT_END (the demo's month and the backfills' END=2018-11-30 would take minutes each);
- `/data/sparkify` (an example of your own lake) is a lake generated here;
- `make test` is left out: it is the suite this test is part of;
- `make demo` keeps the UI up "until Ctrl-C": the test presses it (SIGINT to the process group, as a terminal does)
  once the demo says so;
- the environment is a newcomer's: no SPARKIFY_* or AIRFLOW_* variables, except the PostgreSQL database (CI's
  local server, a new database) and the Airflow port (a free one).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from datetime import date
from pathlib import Path

import duckdb
import pytest

from sparkify.datagen import generate
from sparkify.local_airflow import free_port
from sparkify.settings import from_env
from sparkify.warehouses import warehouse_for
from tests.conftest import drop_database, reader_of
from tests.documented import REPO, Block, shell_blocks

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

SHORT_END = date(2018, 11, 2)
DAYS = 2
EXAMPLE_LAKE = "/data/sparkify"
ITSELF = re.compile(r"^\s*make test\b.*$", re.M)
KEEPS_RUNNING = re.compile(r"^\s*make (demo|airflow)\b", re.M)
CTRL_C_PROMPT = "Press Ctrl-C to stop."
NEWCOMER_UNSET = ("SPARKIFY_", "AIRFLOW_", "VIRTUAL_ENV")
MAKE_VARIABLES = ("START", "END", "DATE", "SCALE", "SEED", "DROP", "Q")


def shortened(script: str, lake: Path) -> str:
    def end(match: re.Match[str]) -> str:
        return f"END={min(date.fromisoformat(match.group(1)), SHORT_END)}"

    script = re.sub(r"\bEND=(\d{4}-\d{2}-\d{2})\b", end, script)
    return ITSELF.sub("", script).replace(EXAMPLE_LAKE, str(lake))


def copy_of_repository(target: Path) -> Path:
    """What `git clone` of this working tree holds: the tracked files and the new ones git does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (item.decode() for item in listed)):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def run_block(block: Block, script: str, clone: Path, env: dict[str, str]) -> tuple[int, str]:
    process = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = []
    interrupted = False
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        if CTRL_C_PROMPT in line and KEEPS_RUNNING.search(script) and not interrupted:
            os.killpg(process.pid, signal.SIGINT)
            interrupted = True
    code = process.wait(timeout=600)
    text = "".join(output)
    if interrupted:
        # Ctrl-C is how the reader ends it: make passes the signal on and dies of it.
        assert "Stopping Airflow" in text, (str(block), text[-4000:])
        return 0, text
    return code, text


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory, postgres_server):
    root = tmp_path_factory.mktemp("docs")
    clone = copy_of_repository(root / "sparkify")
    lake = generate(root / "lake", scale=1, seed=11, days=DAYS).root
    database = f"sparkify_docs_{uuid.uuid4().hex[:10]}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(NEWCOMER_UNSET) and key not in MAKE_VARIABLES
    }
    env.update(
        {
            # CI's server, as the tests' own SPARKIFY_PG_* name it, and a new database on it.
            **{key: value for key, value in os.environ.items() if key.startswith("SPARKIFY_PG_")},
            "SPARKIFY_PG_DATABASE": database,
            "SPARKIFY_PG_READER": reader_of(database),
            "SPARKIFY_AIRFLOW_PORT": str(free_port()),
            "END": SHORT_END.isoformat(),
        }
    )
    env["PATH"] = os.pathsep.join(
        entry for entry in env.get("PATH", "").split(os.pathsep) if not entry.startswith(str(REPO))
    )
    results = []
    runnable = [block for block in shell_blocks() if not block.kind]
    try:
        for block in runnable:
            script = shortened(block.text, lake)
            started = time.monotonic()
            try:
                code, output = run_block(block, script, clone, env)
            except Exception as error:  # reported by the test below, with the block it happened in
                code, output = -1, f"{type(error).__name__}: {error}"
            results.append((block, script, code, output, time.monotonic() - started))
            if code != 0:
                break
        yield {"clone": clone, "env": env, "runnable": runnable, "results": results, "database": database}
    finally:
        drop_database(database)


def test_every_runnable_block_succeeds(walkthrough):
    assert [block for block, *_ in walkthrough["results"]] == walkthrough["runnable"]
    for block, script, code, output, _ in walkthrough["results"]:
        assert code == 0, f"{block} failed ({code}):\n{script}\n--- output\n{output[-6000:]}"


def outputs(walkthrough, pattern: str) -> list[str]:
    return [output for _, script, _, output, _ in walkthrough["results"] if re.search(pattern, script)]


def test_every_backfill_runs_its_days_and_counts_its_own_reports(walkthrough):
    backfills = outputs(walkthrough, r"make (demo|backfill)\b")
    # README's demo (DuckDB), docs/warehouses.md (PostgreSQL), docs/operations.md (DuckDB again).
    assert len(backfills) == 3
    warehouses = [re.search(r"\((\w+) warehouse, lake", output).group(1) for output in backfills]
    assert warehouses == ["duckdb", "postgres", "duckdb"]
    for output in backfills:
        assert f"runs: {DAYS} succeeded, 0 failed, 0 not created" in output, output[-4000:]
        # The report runs this backfill's days started, all successful: one per day, or fewer where the scheduler
        # found two days' asset events queued at once (one run then reports both days). Never an earlier
        # backfill's runs as well.
        reports = re.search(r"^  sparkify_listening_report: (\d+) success$", output, re.M)
        assert reports and 1 <= int(reports.group(1)) <= DAYS, output[-4000:]


def test_the_report_ran_on_each_warehouse(walkthrough):
    days = [date(2018, 11, day) for day in range(1, DAYS + 1)]
    with duckdb.connect(str(walkthrough["clone"] / ".local" / "sparkify.duckdb"), read_only=True) as con:
        reported = con.execute("select distinct report_date from analytics.rpt_daily_listening order by 1")
        assert [row[0] for row in reported.fetchall()] == days
    postgres = from_env({**walkthrough["env"], "SPARKIFY_WAREHOUSE": "postgres"})
    with warehouse_for(postgres).cursor() as cur:
        cur.execute("select distinct report_date from analytics.rpt_daily_listening order by 1")
        assert [row[0] for row in cur.fetchall()] == days


def test_make_sql_prints_what_was_asked(walkthrough):
    for output in outputs(walkthrough, r"make sql"):
        # The header, its rule, then at least one row.
        assert re.search(r"^-+(  -+)*\n\S", output, re.M), output[-2000:]
    (levels,) = outputs(walkthrough, r"group by 1\"")
    assert "free" in levels and "paid" in levels, levels[-2000:]


def test_the_dbt_models_build_by_hand(walkthrough):
    (build,) = outputs(walkthrough, r"dbt build")
    assert "Completed successfully" in build, build[-4000:]
