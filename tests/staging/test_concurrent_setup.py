"""stage_events and stage_songs start at the same moment on a new PostgreSQL database, and each creates the
landing schema and tables if they are missing: the second waits for the first, then finds them, instead of
failing on PostgreSQL's catalog (where "if not exists" does not guard against a transaction in flight)."""

from __future__ import annotations

import threading

from sparkify.staging import postgres
from tests.conftest import new_warehouse, reader_of


def test_the_second_setup_waits_for_the_first_and_succeeds(tmp_path, pg_database):
    settings = new_warehouse(
        tmp_path / "lake",
        tmp_path / "unused.duckdb",
        {
            "SPARKIFY_WAREHOUSE": "postgres",
            "SPARKIFY_PG_DATABASE": pg_database,
            "SPARKIFY_PG_READER": reader_of(pg_database),
        },
    )
    outcome: dict[str, BaseException | None] = {}

    def second() -> None:
        try:
            with postgres.transaction(settings) as cur:
                postgres.ensure_tables(cur, settings.raw_schema)
            outcome["second"] = None
        except BaseException as error:
            outcome["second"] = error

    with postgres.transaction(settings) as cur:
        # The first creates everything and has not committed when the second starts.
        postgres.ensure_tables(cur, settings.raw_schema)
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=2)
        # The second is waiting for the first (not failed, not done).
        assert thread.is_alive() and "second" not in outcome, outcome
    thread.join(timeout=60)
    assert outcome == {"second": None}, outcome
    with postgres.transaction(settings) as cur:
        cur.execute(
            "select count(*) from information_schema.tables where table_schema = %s", (settings.raw_schema,)
        )
        assert cur.fetchone()[0] >= 3
