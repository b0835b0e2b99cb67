"""dbt_sparkify's conventions and its Redshift SQL, without a warehouse: sqlfluff and dbt-bouncer as
docs/development.md runs them (and that dbt-bouncer catches a violation), the redshift target parsed and
compiled, its SQL free of what Redshift lacks."""

from __future__ import annotations

import json
import os
import re
import shutil

from tests.conftest import BIN, PROJECT, REPO, dbt, run
from tests.documented import block_run_by


def test_the_documented_lint_and_bouncer_pass(tmp_path):
    """docs/development.md's lint commands, read from it and run as written: sqlfluff, then dbt-bouncer. In a
    copy of the project with its manifest (`make manifest`'s): sqlfluff's dbt templater writes dbt's target/,
    which the end-to-end tests' Airflows running meanwhile read."""
    block = block_run_by("tests/dbt/test_dbt_conventions.py", "docs/development.md")
    checkout = tmp_path / "checkout"
    shutil.copytree(
        PROJECT, checkout / "dbt_sparkify", ignore=shutil.ignore_patterns("logs", "partial_parse*")
    )
    shutil.copy(REPO / "profiles.yml", checkout / "profiles.yml")
    (checkout / ".venv").symlink_to(BIN.parent)
    env = {**os.environ, "DO_NOT_TRACK": "1", "NO_COLOR": "1"}
    result = run(["bash", "-euo", "pipefail", "-c", block.text], env, cwd=checkout)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    assert "sqlfluff" in block.text and "dbt-bouncer" in block.text, block.text
    assert "All checks passed" in result.stdout, result.stdout[-3000:]


def test_dbt_bouncer_catches_violations(tmp_path):
    copy = tmp_path / "dbt_sparkify"
    shutil.copytree(PROJECT, copy, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    (copy / "models" / "marts" / "songplay_report.sql").write_text(
        "select * from {{ source('sparkify', 'staging_events') }}\n"
    )
    env = {
        **os.environ,
        "SPARKIFY_DUCKDB_PATH": str(tmp_path / "x.duckdb"),
        "DO_NOT_TRACK": "1",
        "NO_COLOR": "1",
    }
    assert dbt(env, "parse", project=copy).returncode == 0
    result = run([str(BIN / "dbt-bouncer"), "--config-file", "dbt-bouncer.yml"], env, cwd=copy)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    for check in (
        "check_model_names",
        "check_lineage_source_cannot_be_used",
        "check_model_description_populated",
        "check_model_has_unique_test",
    ):
        assert check in output, check


# Functions and syntax of DuckDB or PostgreSQL that Redshift does not have.
NOT_ON_REDSHIFT = {
    "DuckDB epoch_ms": r"\bepoch_ms\s*\(",
    "DuckDB list functions": r"\blist_\w+\s*\(",
    "DuckDB struct": r"\bstruct_pack\s*\(|\{\s*'\w+'\s*:",
    "to_timestamp of a number": r"\bto_timestamp\s*\(",
    "regexp flags argument": r"regexp_replace\s*\([^;]*,\s*'g'\s*\)",
    "jsonb": r"::\s*jsonb|\bjsonb_",
    "distinct on": r"\bdistinct\s+on\s*\(",
    "aggregate filter": r"\bfilter\s*\(\s*where\b",
    "generate_series": r"\bgenerate_series\s*\(",
    "array functions": r"\b(array_agg|unnest|string_agg)\s*\(",
    "DuckDB date functions": r"\b(date_diff|strftime|strptime)\s*\(",
}


def test_redshift_target_parses_and_compiles_to_redshift_sql(tmp_path):
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    target = tmp_path / "redshift"
    parse = dbt(env, "parse", "--target", "redshift", "--target-path", str(target))
    assert parse.returncode == 0, parse.stdout[-3000:]
    nodes = json.loads((target / "manifest.json").read_text())["nodes"]
    fact = nodes["model.sparkify.fct_songplays"]["config"]
    assert (fact["dist"], fact["sort"]) == ("user_id", ["log_date", "start_time"])
    for dimension in ("dim_users", "dim_user_levels", "dim_songs", "dim_artists", "dim_time"):
        assert nodes[f"model.sparkify.{dimension}"]["config"]["dist"] == "all"
    # No cluster here: compile without the queries that would ask one what exists.
    compiled = dbt(
        env,
        "compile",
        "--target",
        "redshift",
        "--no-introspect",
        "--no-populate-cache",
        "--target-path",
        str(target),
    )
    assert compiled.returncode == 0, compiled.stdout[-3000:]
    files = sorted((target / "compiled" / "sparkify").rglob("*.sql"))
    models = [f for f in files if "/models/" in f.as_posix() and f.parent.suffix != ".yml"]
    assert len(models) == 13
    assert len(files) > 60
    for path in files:
        text = path.read_text()
        for what, pattern in NOT_ON_REDSHIFT.items():
            assert not re.search(pattern, text, re.I), f"{path.relative_to(target)} uses {what}"
    events = (target / "compiled/sparkify/models/staging/sparkify/stg_sparkify__events.sql").read_text()
    assert "timestamp 'epoch' + cast(ts as bigint) / 1000.0 * interval '1 second'" in events
    songplays = (target / "compiled/sparkify/models/marts/fct_songplays.sql").read_text()
    assert "regexp_replace(cast(song_title as" in songplays


def test_the_redshift_check_catches_duckdb_sql(tmp_path):
    duckdb_sql = "select epoch_ms(ts), list_value(1), regexp_replace(a, 'x', 'y', 'g') from t"
    found = {what for what, pattern in NOT_ON_REDSHIFT.items() if re.search(pattern, duckdb_sql, re.I)}
    assert found == {"DuckDB epoch_ms", "DuckDB list functions", "regexp flags argument"}
