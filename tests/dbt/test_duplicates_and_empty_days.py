"""The same event logged twice (in one file, or in two days' files, staged in either order) is one songplay, and a
day with an empty log file is a successful day with no songplays; the reconciliation test holds throughout. On
every warehouse that runs here."""

from __future__ import annotations

import json
import os
import shutil
from datetime import date

from sparkify.lake import Lake
from sparkify.warehouses import warehouse_for
from tests.conftest import REPO, dbt

DAY1, DAY2, DAY3 = date(2018, 11, 1), date(2018, 11, 2), date(2018, 11, 3)


def build(env: dict[str, str], day: date, target) -> None:
    result = dbt(
        env,
        "build",
        "--select",
        "+fct_songplays",
        # Tests of the selected models only (not those reaching the dimensions, which are not built here).
        "--indirect-selection",
        "cautious",
        "--vars",
        f"{{run_date: '{day.isoformat()}'}}",
        "--target-path",
        str(target),
    )
    assert result.returncode == 0, result.stdout[-5000:]
    assert "ERROR=0" in result.stdout
    assert "PASS assert_songplays_reconcile_with_staged_events" in result.stdout


def songplays(settings) -> dict[str, int]:
    with warehouse_for(settings).cursor() as cur:
        cur.execute("select cast(log_date as varchar), count(*) from analytics.fct_songplays group by 1")
        return dict(cur.fetchall())


def test_duplicate_events_are_one_songplay_and_an_empty_day_is_a_day(small_lake, make_settings, tmp_path):
    lake = shutil.copytree(small_lake.root, tmp_path / "lake")
    lines = {day: (lake / Lake.log_key(day)).read_text().splitlines() for day in (DAY1, DAY2)}
    repeated = next(line for line in lines[DAY1] if json.loads(line)["page"] == "NextSong")
    # Logged twice on the 1st, and once more in the 2nd's file.
    (lake / Lake.log_key(DAY1)).write_text("\n".join([*lines[DAY1], repeated]) + "\n")
    (lake / Lake.log_key(DAY2)).write_text("\n".join([repeated, *lines[DAY2]]) + "\n")
    (lake / Lake.log_key(DAY3)).write_text("")
    settings = make_settings(lake)
    env = {
        **os.environ,
        "SPARKIFY_HOME": str(REPO),
        "SPARKIFY_LAKE": str(lake),
        "SPARKIFY_WAREHOUSE": settings.warehouse,
        "SPARKIFY_DUCKDB_PATH": str(settings.duckdb_path),
        "SPARKIFY_PG_DATABASE": settings.postgres.database,
        "DO_NOT_TRACK": "1",
    }
    target = tmp_path / "target"
    warehouse_for(settings).stage_songs()
    # The 2nd is staged and built before the 1st exists (runs in parallel can do that), then the 1st, the 2nd
    # again, and the empty 3rd.
    warehouse_for(settings).stage_events(DAY2)
    build(env, DAY2, target)
    warehouse_for(settings).stage_events(DAY1)
    build(env, DAY1, target)
    build(env, DAY2, target)
    assert warehouse_for(settings).stage_events(DAY3)["rows"] == 0
    build(env, DAY3, target)

    plays = {
        day: {
            (event["sessionId"], event["itemInSession"])
            for event in map(json.loads, day_lines)
            if event["page"] == "NextSong"
        }
        for day, day_lines in lines.items()
    }
    key = (json.loads(repeated)["sessionId"], json.loads(repeated)["itemInSession"])
    assert songplays(settings) == {"2018-11-01": len(plays[DAY1]), "2018-11-02": len(plays[DAY2] - {key})}
    with warehouse_for(settings).cursor() as cur:
        cur.execute(
            "select log_date, count(*) from analytics.fct_songplays "
            f"where session_id = {key[0]} and item_in_session = {key[1]} group by 1"
        )
        assert cur.fetchall() == [(DAY1, 1)]
