"""Row counts of a run: what was staged for each of its days, what the marts hold."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

from sparkify.settings import Settings
from sparkify.staging import schema
from sparkify.warehouses import warehouse_for

log = logging.getLogger(__name__)

MART_SCHEMA = "analytics"
MARTS = ("fct_songplays", "dim_users", "dim_user_levels", "dim_songs", "dim_artists", "dim_time")


DAY_COUNTS = ("day.staged_events", "day.staged_nextsong", "day.songplays", "day.quarantined_lines")


def table_counts(settings: Settings) -> dict[str, int]:
    """Rows per staging and mart table, and the quarantine's."""
    quarantine = f"{settings.raw_schema}.{schema.QUARANTINE.name}"
    queries = {
        f"{settings.raw_schema}.{schema.EVENTS.name}": f"select count(*) from {settings.raw_schema}.{schema.EVENTS.name}",
        f"{settings.raw_schema}.{schema.SONGS.name}": f"select count(*) from {settings.raw_schema}.{schema.SONGS.name}",
    }
    queries |= {f"{MART_SCHEMA}.{mart}": f"select count(*) from {MART_SCHEMA}.{mart}" for mart in MARTS}
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


def day_counts(settings: Settings, days: list[date]) -> dict[date, dict[str, int]]:
    """For each day: its staged events, distinct NextSong events, songplays and quarantined lines (one query
    each, grouped by day, however many days the run has)."""
    events = f"{settings.raw_schema}.{schema.EVENTS.name}"
    quarantine = f"{settings.raw_schema}.{schema.QUARANTINE.name}"
    in_days = f"log_date between {sql_literal(min(days))} and {sql_literal(max(days))}"
    queries = {
        "day.staged_events": f"select log_date, count(*) from {events} where {in_days} group by log_date",
        # Distinct events: a line logged twice is one play.
        "day.staged_nextsong": (
            f"select log_date, count(*) from (select distinct log_date, sessionid, iteminsession from {events} "
            f"where {in_days} and page = 'NextSong') as plays group by log_date"
        ),
        "day.songplays": f"select log_date, count(*) from {MART_SCHEMA}.fct_songplays where {in_days} group by log_date",
        "day.quarantined_lines": (
            f"select log_date, count(*) from {quarantine} where source_table = '{schema.EVENTS.name}' "
            f"and {in_days} group by log_date"
        ),
    }
    counts = {day: dict.fromkeys(DAY_COUNTS, 0) for day in days}
    with warehouse_for(settings).cursor() as cur:
        for name, sql in queries.items():
            cur.execute(sql)
            for log_date, rows in cur.fetchall():
                if log_date in counts:
                    counts[log_date][name] = rows
    return counts


def audit_rows(
    settings: Settings, counts: dict[str, int], run_id: str, day: date, tests_passed: int
) -> list[tuple[object, ...]]:
    """A day's audit rows, one per table: (run_id, log_date, table_name, rows_for_day, rows_quarantined,
    rows_total, dbt_tests_passed); ``counts``: the tables' counts and the day's."""
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


def flagged_metrics(settings: Settings, days: list[date]) -> dict[date, list[str]]:
    """Each day's metrics outside their band (``fct_daily_anomalies``), for the days that have any."""
    flagged: dict[date, list[str]] = {}
    with warehouse_for(settings).cursor() as cur:
        cur.execute(
            f"select log_date, metric from {ANOMALIES_TABLE} where log_date between {sql_literal(min(days))} "
            f"and {sql_literal(max(days))} and is_anomaly order by log_date, metric"
        )
        for log_date, metric in cur.fetchall():
            if log_date in days:
                flagged.setdefault(log_date, []).append(metric)
    return flagged


def log_counts(settings: Settings, days: list[date], run_id: str | None = None) -> dict[str, int]:
    """Log the run's counts, one line per table, each of its days' counts, and its dbt outcomes; record them in
    the audit table (a row per day and table, with ``run_id``), and return them (the summary task's XCom): the
    tables' rows, the run's dbt outcomes, and the ``day.*`` counts summed over the run's days (with ``days``,
    how many)."""
    totals = table_counts(settings)
    if run_id is not None:
        totals |= {f"dbt.{key}": value for key, value in dbt_outcomes(settings, run_id).items()}
    tests_passed = totals.get("dbt.test.pass", 0)
    per_day = day_counts(settings, days)
    counts = {**totals, **{name: sum(day[name] for day in per_day.values()) for name in DAY_COUNTS}}
    width = max(len(name) for name in counts)
    for name, rows in totals.items():
        log.info("%s %12d", name.ljust(width), rows)
    for day, values in per_day.items():
        log.info(
            "%s %s", day, "  ".join(f"{name.removeprefix('day.')} {rows}" for name, rows in values.items())
        )
    if run_id is not None:
        rows = [
            row
            for day in days
            for row in audit_rows(settings, totals | per_day[day], run_id, day, tests_passed)
        ]
        record_audit(settings, rows)
        log.info(
            "recorded in %s.%s: run %s, %d day(s), %d dbt tests passed",
            settings.raw_schema,
            schema.AUDIT.name,
            run_id,
            len(days),
            tests_passed,
        )
        if not tests_passed:
            log.warning("no dbt test result of run %s in %s.%s", run_id, settings.raw_schema, RESULTS_TABLE)
    flagged = flagged_metrics(settings, days)
    counts["day.anomalies"] = sum(len(metrics) for metrics in flagged.values())
    counts["days"] = len(days)
    for day, metrics in flagged.items():
        # A flagged day is reported, not failed: the dbt test of the flags warns.
        log.warning("day %s: anomaly flagged for %s (analytics.fct_daily_anomalies)", day, ", ".join(metrics))
    for day, values in per_day.items():
        if values["day.staged_nextsong"] != values["day.songplays"]:
            log.warning(
                "day %s: %d NextSong events staged but %d songplays loaded",
                day,
                values["day.staged_nextsong"],
                values["day.songplays"],
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
