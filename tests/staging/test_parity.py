"""DuckDB and PostgreSQL land exactly the same values from the same files."""

from __future__ import annotations

import json
import shutil
from datetime import date

from sparkify.lake import Lake
from sparkify.settings import from_env
from sparkify.staging import postgres, schema
from sparkify.warehouses import warehouse_for
from tests.conftest import REPO


def landed(settings, table: schema.RawTable) -> list[tuple]:
    columns = ", ".join(column.name for column in table.columns)
    order = "sessionid, iteminsession" if table is schema.EVENTS else "song_id"
    with warehouse_for(settings).cursor() as cur:
        cur.execute(f"select {columns} from landing.{table.name} order by {order}")
        return [tuple(row) for row in cur.fetchall()]


def test_duckdb_and_postgres_land_the_same_rows(small_lake, pg_database, tmp_path):
    base = {"SPARKIFY_HOME": str(REPO), "SPARKIFY_LAKE": str(small_lake.root)}
    on_duckdb = from_env({**base, "SPARKIFY_DUCKDB_PATH": str(tmp_path / "w.duckdb")})
    on_postgres = from_env({**base, "SPARKIFY_WAREHOUSE": "postgres", "SPARKIFY_PG_DATABASE": pg_database})
    postgres.ensure_database(on_postgres)
    for settings in (on_duckdb, on_postgres):
        warehouse_for(settings).stage_songs()
        for day in small_lake.days:
            warehouse_for(settings).stage_events(day)
    for table in (schema.EVENTS, schema.SONGS):
        duckdb_rows = landed(on_duckdb, table)
        assert duckdb_rows == landed(on_postgres, table)
        assert len(duckdb_rows) > 100
    assert small_lake.days[0] == date(2018, 11, 1)


def test_both_warehouses_quarantine_and_cast_alike(small_lake, pg_database, tmp_path):
    lake = shutil.copytree(small_lake.root, tmp_path / "lake")
    path = lake / Lake.log_key(date(2018, 11, 1))
    lines = path.read_text().splitlines()
    event = json.loads(lines[0])
    hostile = [
        "",
        lines[1][:40],
        '{"a": NaN}',
        json.dumps({**event, "itemInSession": 899, "length": float("inf")}),
        json.dumps(
            {**event, "itemInSession": 900, "artist": 112, "length": " 245.3 ", "registration": "1e3"}
        ),
        json.dumps({**event, "itemInSession": 901, "artist": {"x": [1, True]}, "status": True}),
        json.dumps({**event, "itemInSession": 902, "sessionId": "-12", "ts": 1.5}),
        json.dumps({**event, "itemInSession": 903, "song": "tab\tnew\nline back\\slash \u00e9"}),
    ]
    path.write_text("\n".join([*lines, *hostile]) + "\r\n")
    base = {"SPARKIFY_HOME": str(REPO), "SPARKIFY_LAKE": str(lake), "SPARKIFY_MAX_BAD_RATIO": "1"}
    on_duckdb = from_env({**base, "SPARKIFY_DUCKDB_PATH": str(tmp_path / "w.duckdb")})
    on_postgres = from_env({**base, "SPARKIFY_WAREHOUSE": "postgres", "SPARKIFY_PG_DATABASE": pg_database})
    postgres.ensure_database(on_postgres)
    quarantined = []
    for settings in (on_duckdb, on_postgres):
        warehouse_for(settings).stage_events(date(2018, 11, 1))
        with warehouse_for(settings).cursor() as cur:
            cur.execute(
                "select source_file, source_line, raw_text, reason from landing.staging_quarantine order by source_line"
            )
            quarantined.append([tuple(row) for row in cur.fetchall()])
    assert landed(on_duckdb, schema.EVENTS) == landed(on_postgres, schema.EVENTS)
    assert quarantined[0] == quarantined[1]
    assert [row[3] for row in quarantined[0]] == [
        "blank line",
        "not valid JSON, or more than one JSON value",
        "no field of the schema has a value",
        "length: cannot cast 'Infinity' to double precision",
        "status: cannot cast 'true' to integer",
        "ts: cannot cast '1.5' to bigint",
    ]
    assert len(landed(on_duckdb, schema.EVENTS)) == len(lines) + 2
