"""dbt_sparkify on a real DuckDB file: builds, conventions, lint, and checks that fail when the data is wrong."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path

import duckdb
import pytest

from sparkify import summary
from sparkify.datagen import generate
from sparkify.settings import from_env
from sparkify.warehouses import warehouse_for
from tests.conftest import PROJECT, REPO, dbt, expected_matches, read_events, run

DAYS = ("2018-11-01", "2018-11-02")


def stage(lake: Path, database: Path, days: list[date]) -> dict[str, str]:
    """Stage the song files and the given days into a new DuckDB file; the environment dbt needs for it."""
    env = {
        **os.environ,
        "SPARKIFY_HOME": str(REPO),
        "SPARKIFY_LAKE": str(lake),
        "SPARKIFY_DUCKDB_PATH": str(database),
        "DO_NOT_TRACK": "1",
    }
    settings = from_env(env)
    warehouse_for(settings).stage_songs()
    for day in days:
        warehouse_for(settings).stage_events(day)
    return env


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """Two generated days staged and built day by day, as the DAG builds them."""
    root = tmp_path_factory.mktemp("dbt")
    lake = generate(root / "lake", scale=1, seed=21, days=2)
    env = stage(lake.root, root / "warehouse.duckdb", [date.fromisoformat(day) for day in DAYS])
    for day in DAYS:
        result = dbt(env, "build", "--vars", f"{{run_date: '{day}'}}", "--target-path", str(root / "target"))
        assert result.returncode == 0, result.stdout[-5000:]
    return {"env": env, "lake": lake.root, "db": root / "warehouse.duckdb", "root": root}


def fetch(warehouse, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse["db"]), read_only=True) as con:
        return con.execute(sql).fetchall()


def execute(warehouse, sql: str) -> None:
    with duckdb.connect(str(warehouse["db"])) as con:
        con.execute(sql)


def loaded_matches(warehouse) -> dict[tuple[int, int], str]:
    rows = fetch(
        warehouse,
        "select session_id, item_in_session, song_id from analytics.fct_songplays where song_id is not null",
    )
    return {(session, item): song for session, item, song in rows}


def test_unit_tests_and_data_tests_ran(warehouse):
    results = (warehouse["root"] / "target" / "run_results.json").read_text()
    assert results.count('"unit_test.sparkify.') >= 6
    assert '"snapshot.' not in results


def test_normalized_matching_is_the_default_and_finds_more(warehouse):
    normalized_matches = expected_matches(warehouse["lake"], "normalized")
    exact_matches = expected_matches(warehouse["lake"], "exact")
    assert loaded_matches(warehouse) == normalized_matches
    assert len(normalized_matches) > len(exact_matches) > 0
    plays = fetch(warehouse, "select count(*), count(distinct songplay_id) from analytics.fct_songplays")[0]
    assert plays[0] == plays[1] == sum(e["page"] == "NextSong" for e in read_events(warehouse["lake"]))


def test_exact_strategy_is_selectable(warehouse, tmp_path):
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(warehouse["db"], copy)
    env = {**warehouse["env"], "SPARKIFY_DUCKDB_PATH": str(copy)}
    result = dbt(
        env,
        "run",
        "--select",
        "fct_songplays",
        "--full-refresh",
        "--vars",
        "{song_match_strategy: exact}",
        "--target-path",
        str(tmp_path / "target"),
    )
    assert result.returncode == 0, result.stdout[-3000:]
    with duckdb.connect(str(copy), read_only=True) as con:
        rows = con.execute(
            "select session_id, item_in_session, song_id from analytics.fct_songplays "
            "where song_id is not null"
        ).fetchall()
    assert {(s, i): song for s, i, song in rows} == expected_matches(warehouse["lake"], "exact")
    bad = dbt(
        env,
        "compile",
        "--select",
        "fct_songplays",
        "--vars",
        "{song_match_strategy: fuzzy}",
        "--target-path",
        str(tmp_path / "target"),
    )
    assert bad.returncode != 0
    assert "song_match_strategy must be 'normalized' or 'exact'" in bad.stdout


def level_periods(lake: Path) -> set[tuple[str, str, int, int | None]]:
    """(user, level, valid_from, valid_to) in epoch ms, computed here from the log files."""
    by_user = defaultdict(list)
    for event in read_events(lake):
        if event["userId"]:
            by_user[event["userId"]].append(
                (event["ts"], event["sessionId"], event["itemInSession"], event["level"])
            )
    periods = set()
    for user, events in by_user.items():
        events.sort()
        starts = [e for i, e in enumerate(events) if i == 0 or events[i - 1][3] != e[3]]
        for i, (ts, _, _, level) in enumerate(starts):
            periods.add((user, level, ts, starts[i + 1][0] if i + 1 < len(starts) else None))
    return periods


def test_user_level_history_of_november_matches_the_events(month_lake, tmp_path):
    env = stage(month_lake.root, tmp_path / "month.duckdb", month_lake.days)
    # No run_date: the whole month at once, as a full refresh builds it.
    result = dbt(env, "build", "--target-path", str(tmp_path / "target"))
    assert result.returncode == 0, result.stdout[-5000:]
    with duckdb.connect(str(tmp_path / "month.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select user_id, level, epoch_ms(valid_from), epoch_ms(valid_to) from analytics.dim_user_levels"
        ).fetchall()
    expected = level_periods(month_lake.root)
    assert set(rows) == expected
    assert len(rows) == len(expected)
    periods_per_user = defaultdict(int)
    for user, *_ in expected:
        periods_per_user[user] += 1
    assert max(periods_per_user.values()) >= 3, "no user switched twice in the month"


def test_reconciliation_fails_when_a_songplay_is_missing(warehouse, tmp_path):
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(warehouse["db"], copy)
    env = {**warehouse["env"], "SPARKIFY_DUCKDB_PATH": str(copy)}
    test = [
        "test",
        "--select",
        "assert_songplays_reconcile_with_staged_events",
        "--target-path",
        str(tmp_path / "t"),
    ]
    assert dbt(env, *test, "--vars", "{run_date: '2018-11-02'}").returncode == 0
    with duckdb.connect(str(copy)) as con:
        con.execute(
            "delete from analytics.fct_songplays where songplay_id = "
            "(select min(songplay_id) from analytics.fct_songplays where log_date = date '2018-11-02')"
        )
    failed = dbt(env, *test, "--vars", "{run_date: '2018-11-02'}")
    assert failed.returncode != 0
    assert "Got 1 result" in failed.stdout
    # Another day is still consistent.
    assert dbt(env, *test, "--vars", "{run_date: '2018-11-01'}").returncode == 0


def test_source_freshness(warehouse, tmp_path):
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(warehouse["db"], copy)
    env = {**warehouse["env"], "SPARKIFY_DUCKDB_PATH": str(copy)}
    args = ["source", "freshness", "--target-path", str(tmp_path / "t")]
    fresh = dbt(env, *args)
    assert fresh.returncode == 0, fresh.stdout[-3000:]
    with duckdb.connect(str(copy)) as con:
        con.execute("update landing.staging_events set loaded_at = loaded_at - interval 8 day")
    stale = dbt(env, *args)
    assert stale.returncode != 0
    assert "ERROR STALE" in stale.stdout


def test_the_docs_are_generated_again_only_when_what_they_show_changed(warehouse, tmp_path):
    """The DAG's docs task keeps the docs while the project, the profiles and the warehouse's columns are as
    they were generated from; any change (a column, a description) regenerates them."""
    home = tmp_path / "home"
    shutil.copytree(PROJECT, home / "dbt_sparkify", ignore=shutil.ignore_patterns("target", "logs"))
    shutil.copy(REPO / "profiles.yml", home / "profiles.yml")
    shutil.copy(warehouse["db"], tmp_path / "warehouse.duckdb")
    env = {
        **warehouse["env"],
        "SPARKIFY_HOME": str(home),
        "SPARKIFY_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "SPARKIFY_DBT_DOCS_DIR": str(tmp_path / "docs"),
    }
    settings = from_env(env)
    catalog = settings.dbt_docs_dir / "catalog.json"

    def generated(force: bool = False) -> int:
        """The docs task's work, in a process of its own as each task runs."""
        code = f"from sparkify import dbt_run, settings; dbt_run.generate_docs(settings.settings(), force={force})"
        result = run([sys.executable, "-c", code], env, cwd=REPO)
        assert result.returncode == 0, result.stderr[-3000:]
        return catalog.stat().st_mtime_ns

    first = generated()
    assert generated() == first, "regenerated with nothing changed"
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("alter table analytics.dim_artists add column genre varchar")
    second = generated()
    assert second != first
    columns = json.loads(catalog.read_text())["nodes"]["model.sparkify.dim_artists"]["columns"]
    assert "genre" in {name.lower() for name in columns}
    models = home / "dbt_sparkify" / "models" / "marts" / "_sparkify__models.yml"
    text = models.read_text()
    assert text.count("One row per artist") == 1
    models.write_text(text.replace("One row per artist", "One row per artist (edited)"))
    third = generated()
    assert third != second
    manifest = json.loads((settings.dbt_docs_dir / "manifest.json").read_text())
    assert "(edited)" in manifest["nodes"]["model.sparkify.dim_artists"]["description"]
    # The docs open on the project's own overview, not dbt's generic welcome page.
    overview = manifest["docs"]["doc.sparkify.__overview__"]["block_contents"]
    assert overview.startswith("# Sparkify: song plays as a star schema"), overview[:200]
    assert "Sparkify health" in overview and "fct_songplays" in overview
    assert generated(force=True) != third, "`make docs` always regenerates"


def manifest_nodes() -> list[dict]:
    return list(json.loads((PROJECT / "target" / "manifest.json").read_text())["nodes"].values())


def test_summary_counts(warehouse):
    settings = from_env(warehouse["env"])
    counts = (
        summary.table_counts(settings) | summary.day_counts(settings, [date(2018, 11, 2)])[date(2018, 11, 2)]
    )
    day_plays = {
        (e["sessionId"], e["itemInSession"])
        for e in read_events(warehouse["lake"])
        if e["page"] == "NextSong" and e["_day"] == "2018-11-02"
    }
    assert counts["day.staged_nextsong"] == counts["day.songplays"] == len(day_plays)
    for table in ("analytics.fct_songplays", "analytics.dim_user_levels", "landing.staging_events"):
        assert counts[table] == fetch(warehouse, f"select count(*) from {table}")[0][0]


def test_the_summary_records_each_run_in_the_audit_table(warehouse, tmp_path):
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(warehouse["db"], copy)
    env = {**warehouse["env"], "SPARKIFY_DUCKDB_PATH": str(copy)}
    settings = from_env(env)
    day, run_id = date(2018, 11, 2), "scheduled__2018-11-02T00:00:00+00:00"

    def tested(run: str, *select: str) -> None:
        result = dbt(
            {**env, "SPARKIFY_RUN_ID": run, "SPARKIFY_RUN_DATE": "2018-11-02"},
            "test",
            "--exclude-resource-type",
            "unit_test",
            *select,
            "--target-path",
            str(tmp_path / "target"),
        )
        assert result.returncode == 0, result.stdout[-5000:]

    # The run's tests, then two of them again in the same run (a retried task): replaced, not added.
    tested(run_id)
    tested(run_id, "--select", "fct_songplays,test_name:unique")
    summary.log_counts(settings, [day], run_id)
    counts = summary.log_counts(settings, [day], run_id)
    tested("manual__2018-11-01", "--select", "dim_users")
    summary.log_counts(settings, [date(2018, 11, 1)], "manual__2018-11-01")
    with duckdb.connect(str(copy), read_only=True) as con:
        rows = con.execute(
            "select table_name, rows_for_day, rows_quarantined, rows_total, dbt_tests_passed "
            "from landing.pipeline_audit where run_id like 'scheduled__2018-11-02%' order by table_name"
        ).fetchall()
        runs = con.execute("select count(distinct run_id), count(*) from landing.pipeline_audit").fetchone()
        results = con.execute(
            "select count(*), count(distinct unique_id), count(distinct invocation_id), min(run_date) "
            f"from landing.dbt_results where run_id = '{run_id}'"
        ).fetchone()
        manual = con.execute(
            "select count(*) from landing.dbt_results where run_id = 'manual__2018-11-01'"
        ).fetchone()[0]
    tests = sum(node["resource_type"] == "test" for node in manifest_nodes())
    # One row per test of the project (the rerun's replaced), from two invocations.
    assert results == (tests, tests, 2, day)
    assert counts["dbt.test.pass"] == tests and 0 < manual < tests
    assert runs == (2, 16)
    by_table = {row[0]: row[1:] for row in rows}
    assert by_table["landing.staging_events"] == (
        counts["day.staged_events"],
        0,
        counts["landing.staging_events"],
        tests,
    )
    assert by_table["landing.staging_songs"] == (
        counts["landing.staging_songs"],
        0,
        counts["landing.staging_songs"],
        tests,
    )
    assert by_table["analytics.fct_songplays"] == (
        counts["day.songplays"],
        None,
        counts["analytics.fct_songplays"],
        tests,
    )
    assert by_table["analytics.dim_users"] == (None, None, counts["analytics.dim_users"], tests)
    assert len(by_table) == 8 and counts["day.staged_events"] > 0 and counts["days"] == 1

    # A run over two days: a row per day and table, each day's own counts, the XCom's day counts their sum.
    first = summary.log_counts(settings, [date(2018, 11, 1)], "manual__2018-11-01")
    both = summary.log_counts(settings, [date(2018, 11, 1), day], "range__2018-11-01")
    with duckdb.connect(str(copy), read_only=True) as con:
        days = con.execute(
            "select log_date, table_name, rows_for_day from landing.pipeline_audit "
            "where run_id = 'range__2018-11-01' order by log_date, table_name"
        ).fetchall()
    assert len(days) == 16 and {row[0] for row in days} == {date(2018, 11, 1), day}
    assert both["days"] == 2
    for name in summary.DAY_COUNTS:
        assert both[name] == first[name] + counts[name], name
    staged = {row[0]: row[2] for row in days if row[1] == "landing.staging_events"}
    assert staged == {date(2018, 11, 1): first["day.staged_events"], day: counts["day.staged_events"]}
