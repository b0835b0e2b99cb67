"""A load killed with SIGKILL in the middle of its transaction leaves the previous rows of the day, whole; the next
attempt (Airflow's retry runs the same function) lands the new file exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import date

from sparkify.lake import Lake
from sparkify.warehouses import warehouse_for
from tests.conftest import REPO

DAY = date(2018, 11, 1)
STAGE = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.INFO, stream=sys.stderr, format='%(message)s')\n"
    "from datetime import date\n"
    "from sparkify.warehouses import warehouse_for\n"
    "from sparkify.settings import from_env\n"
    f"warehouse_for(from_env()).stage_events(date.fromisoformat('{DAY.isoformat()}'))\n"
)


def stage_in_process(env: dict[str, str], kill_in_transaction: bool) -> str:
    process = subprocess.Popen(
        [sys.executable, "-c", STAGE], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True
    )
    seen = []
    for line in process.stderr:
        seen.append(line)
        if kill_in_transaction and "in one transaction" in line:
            os.kill(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=120)
    if kill_in_transaction:
        assert process.returncode == -signal.SIGKILL, "".join(seen)
    else:
        assert process.returncode == 0, "".join(seen)
    return "".join(seen)


def day_rows(settings) -> tuple[int, int]:
    with warehouse_for(settings).cursor() as cur:
        cur.execute(
            "select count(*), count(distinct sessionid * 100000 + iteminsession) from landing.staging_events "
            f"where log_date = date '{DAY.isoformat()}'"
        )
        return tuple(cur.fetchone())


def test_a_load_killed_midway_changes_nothing_and_its_retry_lands_the_day(
    small_lake, make_settings, tmp_path
):
    lake = tmp_path / "lake"
    path = lake / Lake.log_key(DAY)
    path.parent.mkdir(parents=True)
    original = (small_lake.root / Lake.log_key(DAY)).read_text().splitlines()
    path.write_text("\n".join(original) + "\n")
    settings = make_settings(lake)
    env = {
        **os.environ,
        "SPARKIFY_HOME": str(REPO),
        "SPARKIFY_LAKE": str(lake),
        "SPARKIFY_WAREHOUSE": settings.warehouse,
        "SPARKIFY_DUCKDB_PATH": str(settings.duckdb_path),
        "SPARKIFY_PG_DATABASE": settings.postgres.database,
    }
    stage_in_process(env, kill_in_transaction=False)
    assert day_rows(settings) == (len(original), len(original))

    # A new version of the day, large enough that the load is still writing when it is killed.
    template = json.loads(original[0])
    bigger = [
        json.dumps({**template, "sessionId": 10**6 + n // 500, "itemInSession": n % 500})
        for n in range(200_000)
    ]
    path.write_text("\n".join(bigger) + "\n")
    stage_in_process(env, kill_in_transaction=True)
    assert day_rows(settings) == (len(original), len(original))

    stage_in_process(env, kill_in_transaction=False)
    assert day_rows(settings) == (len(bigger), len(bigger))
