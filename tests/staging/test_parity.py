"""DuckDB and PostgreSQL land exactly the same values from the same files."""

from __future__ import annotations

from datetime import date

from sparkify import staging, warehouse
from sparkify.settings import from_env
from sparkify.staging import postgres, schema
from tests.conftest import REPO


def landed(settings, table: schema.RawTable) -> list[tuple]:
    columns = ", ".join(column.name for column in table.columns)
    order = "sessionid, iteminsession" if table is schema.EVENTS else "song_id"
    with warehouse.cursor(settings) as cur:
        cur.execute(f"select {columns} from raw.{table.name} order by {order}")
        return [tuple(row) for row in cur.fetchall()]


def test_duckdb_and_postgres_land_the_same_rows(small_lake, pg_database, tmp_path):
    base = {"SPARKIFY_HOME": str(REPO), "SPARKIFY_LAKE": str(small_lake.root)}
    on_duckdb = from_env({**base, "SPARKIFY_DUCKDB_PATH": str(tmp_path / "w.duckdb")})
    on_postgres = from_env({**base, "SPARKIFY_WAREHOUSE": "postgres", "SPARKIFY_PG_DATABASE": pg_database})
    postgres.ensure_database(on_postgres)
    for settings in (on_duckdb, on_postgres):
        staging.stage_songs(settings)
        for day in small_lake.days:
            staging.stage_events(settings, day)
    for table in (schema.EVENTS, schema.SONGS):
        duckdb_rows = landed(on_duckdb, table)
        assert duckdb_rows == landed(on_postgres, table)
        assert len(duckdb_rows) > 100
    assert small_lake.days[0] == date(2018, 11, 1)
