"""Row counts of a run: what was staged for the day, what the marts hold."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

from sparkify.settings import Settings
from sparkify.staging import schema
from sparkify.warehouses import warehouse_for

log = logging.getLogger(__name__)

MART_SCHEMA = "analytics"
MARTS = ("fct_songplays", "dim_users", "dim_user_levels", "dim_songs", "dim_artists", "dim_time")


def table_counts(settings: Settings, day: date | None = None) -> dict[str, int]:
    """Rows per staging and mart table; with ``day``, also the day's staged events and songplays."""
    quarantine = f"{settings.raw_schema}.{schema.QUARANTINE.name}"
    queries = {
        f"{settings.raw_schema}.{schema.EVENTS.name}": f"select count(*) from {settings.raw_schema}.{schema.EVENTS.name}",
        f"{settings.raw_schema}.{schema.SONGS.name}": f"select count(*) from {settings.raw_schema}.{schema.SONGS.name}",
    }
    queries |= {f"{MART_SCHEMA}.{mart}": f"select count(*) from {MART_SCHEMA}.{mart}" for mart in MARTS}
    if day is not None:
        iso = day.isoformat()
        queries["day.staged_events"] = (
            f"select count(*) from {settings.raw_schema}.{schema.EVENTS.name} where log_date = date '{iso}'"
        )
        # Distinct events: a line logged twice is one play.
        queries["day.staged_nextsong"] = (
            f"select count(*) from (select distinct sessionid, iteminsession from "
            f"{settings.raw_schema}.{schema.EVENTS.name} where log_date = date '{iso}' and page = 'NextSong') as plays"
        )
        queries["day.songplays"] = (
            f"select count(*) from {MART_SCHEMA}.fct_songplays where log_date = date '{iso}'"
        )
        queries["day.quarantined_lines"] = (
            f"select count(*) from {quarantine} where source_table = '{schema.EVENTS.name}' and log_date = date '{iso}'"
        )
    queries[quarantine] = f"select count(*) from {quarantine}"
    queries["quarantined_song_files"] = (
        f"select count(*) from {quarantine} where source_table = '{schema.SONGS.name}'"
    )
    counts = {}
    with warehouse_for(settings).cursor() as cur:
        for name, sql in queries.items():
            cur.execute(sql)
            counts[name] = cur.fetchone()[0]
    return counts


def audit_rows(
    settings: Settings, counts: dict[str, int], run_id: str, day: date, tests_passed: int
) -> list[tuple[object, ...]]:
    """The run's audit rows, one per table: (run_id, log_date, table_name, rows_for_day, rows_quarantined,
    rows_total, dbt_tests_passed)."""
    events = f"{settings.raw_schema}.{schema.EVENTS.name}"
    songs = f"{settings.raw_schema}.{schema.SONGS.name}"
    for_day = {
        events: (counts["day.staged_events"], counts["day.quarantined_lines"]),
        songs: (counts[songs], counts["quarantined_song_files"]),
        f"{MART_SCHEMA}.fct_songplays": (counts["day.songplays"], None),
    }
    return [
        (run_id, day, table, *for_day.get(table, (None, None)), counts[table], tests_passed)
        for table in (events, songs, *(f"{MART_SCHEMA}.{mart}" for mart in MARTS))
    ]


def sql_literal(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return f"timestamp '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"date '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def replace_rows(
    settings: Settings, table: str, create: list[str], where: str, rows: list[tuple[object, ...]]
) -> None:
    """In one transaction, delete the rows of ``table`` matching ``where`` and insert ``rows`` (values as SQL
    literals), after the ``create`` statements that make sure the table exists."""
    statements = [*create, "begin", f"delete from {table} where {where}"]
    if rows:
        values = ",\n".join("(" + ", ".join(map(sql_literal, row)) + ")" for row in rows)
        statements.append(f"insert into {table} values {values}")
    statements.append("commit")
    with warehouse_for(settings).cursor(read_only=False) as cur:
        for statement in statements:
            cur.execute(statement)


def record_audit(settings: Settings, rows: list[tuple[object, ...]]) -> None:
    """Replace the run's rows of the audit table (a rerun of the run records its latest counts)."""
    # The time is a literal: Redshift's current_timestamp runs on the leader node only and fails in a
    # statement that writes a table.
    recorded_at = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    replace_rows(
        settings,
        f"{settings.raw_schema}.{schema.AUDIT.name}",
        [
            f"create schema if not exists {settings.raw_schema}",
            schema.create_table_sql(settings.raw_schema, schema.AUDIT, warehouse_for(settings).text_type),
        ],
        f"run_id = {sql_literal(rows[0][0])}",
        [(*row, recorded_at) for row in rows],
    )


RESULTS_TABLE = "dbt_results"
ANOMALIES_TABLE = f"{MART_SCHEMA}.fct_daily_anomalies"


def dbt_outcomes(settings: Settings, run_id: str) -> dict[str, int]:
    """The run's dbt nodes by kind and status, as the run's dbt commands recorded them in the warehouse
    (``<raw schema>.dbt_results``, written by the project's on-run-end hooks): e.g. ``{"test.pass": 84,
    "test.warn": 1, "model.success": 13}``."""
    with warehouse_for(settings).cursor() as cur:
        # Created by the first dbt command of a DAG run: none yet, no result.
        cur.execute(
            "select count(*) from information_schema.tables "
            f"where table_schema = {sql_literal(settings.raw_schema)} and table_name = {sql_literal(RESULTS_TABLE)}"
        )
        if not cur.fetchone()[0]:
            return {}
        cur.execute(
            f"select resource_type, status, count(*) from {settings.raw_schema}.{RESULTS_TABLE} "
            f"where run_id = {sql_literal(run_id)} group by resource_type, status"
        )
        return {f"{kind}.{status}": count for kind, status, count in cur.fetchall()}


def flagged_metrics(settings: Settings, day: date) -> list[str]:
    """The day's metrics outside their band (``fct_daily_anomalies``)."""
    with warehouse_for(settings).cursor() as cur:
        cur.execute(
            f"select metric from {ANOMALIES_TABLE} where log_date = {sql_literal(day)} and is_anomaly order by metric"
        )
        return [metric for (metric,) in cur.fetchall()]


def log_counts(settings: Settings, day: date, run_id: str | None = None) -> dict[str, int]:
    """Log the run's counts, one line per table, and its dbt outcomes; record them in the audit table (with
    ``run_id``), and return them (the summary task's XCom)."""
    counts = table_counts(settings, day)
    if run_id is not None:
        counts |= {f"dbt.{key}": value for key, value in dbt_outcomes(settings, run_id).items()}
    tests_passed = counts.get("dbt.test.pass", 0)
    width = max(len(name) for name in counts)
    for name, rows in counts.items():
        log.info("%s %12d", name.ljust(width), rows)
    if run_id is not None:
        record_audit(settings, audit_rows(settings, counts, run_id, day, tests_passed))
        log.info(
            "recorded in %s.%s: run %s, %d dbt tests passed",
            settings.raw_schema,
            schema.AUDIT.name,
            run_id,
            tests_passed,
        )
        if not tests_passed:
            log.warning("no dbt test result of run %s in %s.%s", run_id, settings.raw_schema, RESULTS_TABLE)
    flagged = flagged_metrics(settings, day)
    counts["day.anomalies"] = len(flagged)
    if flagged:
        # A flagged day is reported, not failed: the dbt test of the flags warns.
        log.warning("day %s: anomaly flagged for %s (analytics.fct_daily_anomalies)", day, ", ".join(flagged))
    if counts["day.staged_nextsong"] != counts["day.songplays"]:
        log.warning(
            "day %s: %d NextSong events staged but %d songplays loaded",
            day,
            counts["day.staged_nextsong"],
            counts["day.songplays"],
        )
    return counts


def query(settings: Settings, sql: str) -> tuple[list[str], list[tuple[object, ...]]]:
    """Run one query that can change nothing on the warehouse (``Warehouse.read_only_query``): column names
    and rows."""
    return warehouse_for(settings).read_only_query(sql)


def format_table(columns: list[str], rows: list[tuple[object, ...]]) -> str:
    cells = [columns, *[["" if value is None else str(value) for value in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)
