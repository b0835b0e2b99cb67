"""The incremental marts equal a --full-refresh build of the same staged data, after days loaded as they come in
production: out of order, a day staged again with a corrected file, events logged on a later day than they
happened, an event logged on two days, and a level switch on a day loaded after the days that follow it. Every
day's build passes its (day-scoped) tests, and the full-history check passes at the end. On DuckDB and
PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest

from sparkify.datagen import generate
from sparkify.lake import Lake
from sparkify.warehouses import warehouse_for
from tests.conftest import MARTS, REPO, dbt, drop_database, fingerprints, new_warehouse

INTERMEDIATE = ("analytics_intermediate.int_events_deduplicated",)
# The monitoring marts: a day loaded late or again recounts the days it touched and the windows that read them.
MONITORING = ("analytics.fct_daily_volumes", "analytics.fct_daily_anomalies")
DAYS = [date(2018, 11, 1) + timedelta(days=offset) for offset in range(8)]
D = {day.day: day for day in DAYS}
# The 7th after the 8th; the 4th first as a wrong file, corrected last.
LOAD_ORDER = [1, 2, 3, 4, 5, 6, 8, 7, 4]

pytestmark = pytest.mark.timeout(900)


def lines_of(lake: Path, day: int) -> list[dict]:
    return [json.loads(line) for line in (lake / Lake.log_key(D[day])).read_text().splitlines()]


def write(lake: Path, day: int, events: list[dict]) -> None:
    (lake / Lake.log_key(D[day])).write_text("".join(json.dumps(e) + "\n" for e in events))


def flip(level: str) -> str:
    return "paid" if level == "free" else "free"


def make_lake(root: Path) -> tuple[Path, list[dict], dict]:
    """The lake the days end with, and the wrong first version of the 4th; what each case touched."""
    lake = generate(root / "lake", scale=1, seed=13, days=len(DAYS)).root
    cases: dict[str, object] = {}
    # Late: the 2nd's last NextSong events are logged in the 3rd's file.
    second, third = lines_of(lake, 2), lines_of(lake, 3)
    late = [e for e in second if e["page"] == "NextSong"][-5:]
    write(lake, 2, [e for e in second if e not in late])
    write(lake, 3, late + third)
    cases["late"] = {(e["sessionId"], e["itemInSession"]) for e in late}
    # Logged twice: a play of the 5th is in the 6th's file too (the 5th's occurrence is the one kept).
    twice = next(e for e in lines_of(lake, 5) if e["page"] == "NextSong")
    write(lake, 6, [twice, *lines_of(lake, 6)])
    # A level switch on the 7th: a user seen before, on the 7th and on the 8th is at the other level all the 7th.
    before = {e["userId"] for day in range(1, 7) for e in lines_of(lake, day) if e["userId"]}
    users = [{e["userId"] for e in lines_of(lake, day) if e["userId"]} for day in (7, 8)]
    switcher = sorted(before.intersection(*users), key=int)[0]
    write(
        lake,
        7,
        [{**e, "level": flip(e["level"])} if e["userId"] == switcher else e for e in lines_of(lake, 7)],
    )
    cases["switcher"] = switcher
    # The 4th as first staged: a play that is the 5th's too (it then counts for the 4th), a play the corrected
    # file drops, one that was a Home page, and a user's last event of the day at the other level.
    wrong = [dict(e) for e in lines_of(lake, 4)]
    plays = [i for i, e in enumerate(wrong) if e["page"] == "NextSong"]
    wrong[plays[0]] = {**wrong[plays[0]], "page": "Home", "song": None, "artist": None, "length": None}
    last_of_user = max(i for i, e in enumerate(wrong) if e["userId"])
    wrong[last_of_user] = {**wrong[last_of_user], "level": flip(wrong[last_of_user]["level"])}
    dropped = {**wrong[plays[1]], "sessionId": 999_999, "itemInSession": 0}
    wrong += [twice, dropped]
    cases["moved"] = (twice["sessionId"], twice["itemInSession"])
    cases["dropped"] = (dropped["sessionId"], dropped["itemInSession"])
    return lake, wrong, cases


def new_scenario(request, kind: str, tmp_path: Path) -> dict:
    """The lake the days end with (and the wrong first version of the 4th, what each case touched), on a new
    warehouse of ``kind`` with the song files staged: the environment of its dbt commands and their target."""
    lake, wrong_fourth, cases = make_lake(tmp_path)
    extra = {}
    if kind == "postgres":
        request.getfixturevalue("postgres_server")
        database = f"sparkify_test_{uuid.uuid4().hex[:12]}"
        request.addfinalizer(lambda: drop_database(database))
        extra = {"SPARKIFY_WAREHOUSE": "postgres", "SPARKIFY_PG_DATABASE": database}
    settings = new_warehouse(lake, tmp_path / "warehouse.duckdb", extra)
    env = {
        **os.environ,
        "SPARKIFY_HOME": str(REPO),
        "SPARKIFY_LAKE": str(lake),
        "SPARKIFY_WAREHOUSE": settings.warehouse,
        "SPARKIFY_DUCKDB_PATH": str(settings.duckdb_path),
        "SPARKIFY_PG_DATABASE": settings.postgres.database,
        "DBT_EXCLUDE_RESOURCE_TYPES": "unit_test",
        "DO_NOT_TRACK": "1",
    }
    warehouse_for(settings).stage_songs()
    return {
        "lake": lake,
        "wrong_fourth": wrong_fourth,
        "corrected_fourth": (lake / Lake.log_key(D[4])).read_text(),
        "cases": cases,
        "settings": settings,
        "env": env,
        "target": tmp_path / "target",
    }


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def warehouse_kind(request) -> str:
    """The warehouse both scenarios run on: one parameter, so each is built once per warehouse."""
    return request.param


@pytest.fixture(scope="module")
def scenario(request, warehouse_kind, tmp_path_factory):
    new = new_scenario(request, warehouse_kind, tmp_path_factory.mktemp(f"incremental-{warehouse_kind}"))
    lake, wrong_fourth, corrected_fourth = new["lake"], new["wrong_fourth"], new["corrected_fourth"]
    settings, env, target = new["settings"], new["env"], new["target"]
    warehouse = warehouse_for(settings)
    cases = new["cases"]
    fourth_staged = 0
    for load, day in enumerate(LOAD_ORDER):
        if day == 4:
            fourth_staged += 1
            text = (
                "".join(json.dumps(e) + "\n" for e in wrong_fourth)
                if fourth_staged == 1
                else corrected_fourth
            )
            (lake / Lake.log_key(D[4])).write_text(text)
        warehouse.stage_events(D[day])
        run = {"SPARKIFY_RUN_DATE": D[day].isoformat(), "SPARKIFY_RUN_ID": f"load_{load}_{D[day]}"}
        result = dbt({**env, **run}, "build", "--target-path", str(target))
        assert result.returncode == 0, f"the run of {D[day]}:\n{result.stdout[-6000:]}"
        assert "ERROR=0" in result.stdout and "WARN=0" in result.stdout, result.stdout[-3000:]
    incremental = fingerprints(settings, MARTS + INTERMEDIATE + MONITORING)
    with warehouse.cursor() as cur:
        cur.execute("select session_id, item_in_session, log_date from analytics.fct_songplays")
        plays = {(session, item): log_date for session, item, log_date in cur.fetchall()}
        cur.execute(
            "select user_id, level, valid_from from analytics.dim_user_levels order by user_id, valid_from"
        )
        periods = cur.fetchall()
    # The whole history checked (`make check`: every test on every row), then everything rebuilt from scratch.
    checked = subprocess.run(
        [sys.executable, "-m", "sparkify.cli", "check"], env=env, capture_output=True, text=True, timeout=600
    )
    rebuilt = dbt(env, "build", "--full-refresh", "--target-path", str(target))
    assert rebuilt.returncode == 0, rebuilt.stdout[-6000:]
    with warehouse.cursor() as cur:
        # Every load's dbt results kept, once per node (PostgreSQL and DuckDB write them alike).
        cur.execute(
            "select count(distinct run_id), count(*), count(distinct run_id || unique_id) from landing.dbt_results"
        )
        results = cur.fetchone()
    return {
        "settings": settings,
        "cases": cases,
        "results": results,
        "incremental": incremental,
        "full_refresh": fingerprints(settings, MARTS + INTERMEDIATE + MONITORING),
        "checked": checked,
        "plays": plays,
        "periods": periods,
    }


def test_every_mart_equals_a_full_refresh_build(scenario):
    assert scenario["incremental"] == scenario["full_refresh"]
    assert all(rows for rows, _ in scenario["incremental"].values()), scenario["incremental"]


def test_every_load_kept_its_dbt_results(scenario):
    runs, rows, distinct = scenario["results"]
    assert runs == len(LOAD_ORDER) and rows == distinct > 80 * len(LOAD_ORDER), scenario["results"]


def test_the_full_history_check_passes(scenario):
    assert scenario["checked"].returncode == 0, scenario["checked"].stdout[-6000:]
    assert "PASS assert_songplays_reconcile_with_staged_events" in scenario["checked"].stdout


def test_the_cases_happened(scenario):
    """The scenario does what it says: otherwise equality would prove less."""
    plays, cases = scenario["plays"], scenario["cases"]
    # Late events count for the day they were logged.
    assert {plays[key] for key in cases["late"]} == {D[3]}
    # The play the wrong 4th held first belongs to the 5th again; the play it alone had is gone.
    assert plays[cases["moved"]] == D[5]
    assert cases["dropped"] not in plays
    # The 7th's switch, loaded after the 8th, is two periods starting on the 7th and the 8th.
    switches = [
        valid_from.date()
        for user, _, valid_from in scenario["periods"]
        if user == cases["switcher"] and valid_from.date() in (D[7], D[8])
    ]
    assert switches == [D[7], D[8]], scenario["periods"]


# A run over several days (a backfill with DAYS_PER_RUN=N): the same lake, loaded as ranges, out of order and
# with the 4th corrected by a one-day run, ends with the marts a build of all of it gives.
RANGES = [(1, 3), (5, 8), (4, 4), (2, 6)]


@pytest.fixture(scope="module")
def ranges(request, warehouse_kind, tmp_path_factory):
    new = new_scenario(request, warehouse_kind, tmp_path_factory.mktemp(f"ranges-{warehouse_kind}"))
    lake, wrong_fourth, corrected_fourth = new["lake"], new["wrong_fourth"], new["corrected_fourth"]
    settings, env, target = new["settings"], new["env"], new["target"]
    warehouse = warehouse_for(settings)
    (lake / Lake.log_key(D[4])).write_text("".join(json.dumps(e) + "\n" for e in wrong_fourth))
    outputs = []
    for load, (first, last) in enumerate(RANGES):
        if (first, last) == (4, 4):
            (lake / Lake.log_key(D[4])).write_text(corrected_fourth)
        for day in range(first, last + 1):
            warehouse.stage_events(D[day])
        run = {
            "SPARKIFY_RUN_DATE": D[first].isoformat(),
            "SPARKIFY_RUN_END_DATE": D[last].isoformat(),
            "SPARKIFY_RUN_ID": f"range_{load}_{D[first]}_{D[last]}",
        }
        result = dbt({**env, **run}, "build", "--target-path", str(target))
        assert result.returncode == 0, f"the run of {D[first]} .. {D[last]}:\n{result.stdout[-6000:]}"
        assert "ERROR=0" in result.stdout and "WARN=0" in result.stdout, result.stdout[-3000:]
        outputs.append(result.stdout)
    in_ranges = fingerprints(settings, MARTS + INTERMEDIATE + MONITORING)
    rebuilt = dbt(env, "build", "--full-refresh", "--target-path", str(target))
    assert rebuilt.returncode == 0, rebuilt.stdout[-6000:]
    with warehouse.cursor() as cur:
        cur.execute("select log_date from analytics.fct_daily_volumes order by log_date")
        volume_days = [day for (day,) in cur.fetchall()]
        cur.execute("select count(distinct log_date) from analytics.fct_daily_anomalies")
        anomaly_days = cur.fetchone()[0]
        cur.execute("select distinct run_id, run_date from landing.dbt_results order by run_id")
        results = cur.fetchall()
    return {
        "in_ranges": in_ranges,
        "full_refresh": fingerprints(settings, MARTS + INTERMEDIATE + MONITORING),
        "volume_days": volume_days,
        "anomaly_days": anomaly_days,
        "results": results,
        "outputs": outputs,
    }


def test_runs_over_several_days_build_what_a_full_build_does(ranges, scenario):
    assert ranges["in_ranges"] == ranges["full_refresh"]
    # The same lake loaded a day at a time (the scenario above, on the same warehouse) ends with the same marts
    # (the intermediate table keeps when each line was staged).
    marts = {table: ranges["in_ranges"][table] for table in MARTS + MONITORING}
    assert marts == {table: scenario["incremental"][table] for table in MARTS + MONITORING}
    assert ranges["volume_days"] == DAYS and ranges["anomaly_days"] == len(DAYS)


def test_a_run_over_several_days_tests_all_of_them(ranges):
    """The day-scoped tests of a range run cover its days: the reconciliation of the 5th to the 8th reads them."""
    assert [first for _, first in ranges["results"]] == [D[first] for first, _ in RANGES]
    # dbt results are kept under the run, with its first day.
    assert "PASS assert_songplays_reconcile_with_staged_events" in ranges["outputs"][1]
