"""The raw landing schemas, field by field, shared by every warehouse.

Columns keep the source field names lowercased (as Redshift's COPY maps JSON keys); renaming to snake_case
happens in the dbt staging models. Types are explicit: inference breaks on the real data, where a song file
sometimes holds a number where text is expected (``"artist_name": 112``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    json_key: str
    sql_type: str

    @property
    def name(self) -> str:
        return self.json_key.lower()


@dataclass(frozen=True)
class RawTable:
    name: str
    columns: tuple[Column, ...]
    # Load metadata written by staging, after the source columns.
    metadata: tuple[Column, ...]

    @property
    def all_columns(self) -> tuple[Column, ...]:
        return self.columns + self.metadata


EVENTS = RawTable(
    name="staging_events",
    columns=(
        Column("artist", "varchar"),
        Column("auth", "varchar"),
        Column("firstName", "varchar"),
        Column("gender", "varchar"),
        Column("itemInSession", "integer"),
        Column("lastName", "varchar"),
        Column("length", "double precision"),
        Column("level", "varchar"),
        Column("location", "varchar"),
        Column("method", "varchar"),
        Column("page", "varchar"),
        Column("registration", "double precision"),
        Column("sessionId", "bigint"),
        Column("song", "varchar"),
        Column("status", "integer"),
        Column("ts", "bigint"),
        Column("userAgent", "varchar"),
        Column("userId", "varchar"),
    ),
    metadata=(
        Column("log_date", "date"),
        Column("source_file", "varchar"),
        Column("source_line", "integer"),
        Column("loaded_at", "timestamp"),
    ),
)

SONGS = RawTable(
    name="staging_songs",
    columns=(
        Column("num_songs", "integer"),
        Column("artist_id", "varchar"),
        Column("artist_latitude", "double precision"),
        Column("artist_longitude", "double precision"),
        Column("artist_location", "varchar"),
        Column("artist_name", "varchar"),
        Column("song_id", "varchar"),
        Column("title", "varchar"),
        Column("duration", "double precision"),
        Column("year", "integer"),
    ),
    metadata=(
        Column("source_file", "varchar"),
        Column("loaded_at", "timestamp"),
    ),
)


QUARANTINE = RawTable(
    name="staging_quarantine",
    columns=(),
    metadata=(
        Column("source_table", "varchar"),
        Column("log_date", "date"),
        Column("source_file", "varchar"),
        Column("source_line", "integer"),
        Column("raw_text", "varchar"),
        Column("reason", "varchar"),
        Column("quarantined_at", "timestamp"),
    ),
)

# The last load of the song files: its fingerprint (files, their versions, the staging code) and what it landed.
# A song load whose fingerprint is unchanged, and whose rows are all still there, is skipped.
LOADS = RawTable(
    name="staging_loads",
    columns=(),
    metadata=(
        Column("source_table", "varchar"),
        Column("fingerprint", "varchar"),
        Column("files_read", "integer"),
        Column("rows_loaded", "bigint"),
        Column("records_quarantined", "integer"),
        Column("loaded_at", "timestamp"),
    ),
)

TABLES = (EVENTS, SONGS, QUARANTINE, LOADS)

# Written by the DAG's summary task after each successful run: what the run staged, refused and loaded.
AUDIT = RawTable(
    name="pipeline_audit",
    columns=(),
    metadata=(
        Column("run_id", "varchar"),
        Column("log_date", "date"),
        Column("table_name", "varchar"),
        Column("rows_for_day", "bigint"),
        Column("rows_quarantined", "bigint"),
        Column("rows_total", "bigint"),
        Column("dbt_tests_passed", "integer"),
        Column("recorded_at", "timestamp"),
    ),
)


def create_table_sql(schema: str, table: RawTable, text_type: str = "varchar") -> str:
    """``create table if not exists`` for ``table``; ``text_type`` stands for varchar (Redshift's unqualified
    varchar is varchar(256))."""
    columns = ",\n    ".join(
        f"{column.name} {text_type if column.sql_type == 'varchar' else column.sql_type}"
        for column in table.all_columns
    )
    return f"create table if not exists {schema}.{table.name} (\n    {columns}\n)"
