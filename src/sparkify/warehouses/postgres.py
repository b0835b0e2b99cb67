"""PostgreSQL: a real server (``SPARKIFY_PG_*``), which backs the compose stack; staged by
``sparkify.staging.postgres``.

``make sql`` runs as ``SPARKIFY_PG_READER`` (created on first use by the warehouse's own login, as the database
is), which may only read the warehouse's schemas, in a read-only transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import date
from typing import Any

from sparkify.warehouses import Rows, Warehouse, query_rows, refused


class Postgres(Warehouse):
    name = "postgres"

    def describe(self) -> str:
        pg = self.settings.postgres
        return f"PostgreSQL database {pg.database} on {pg.host}:{pg.port}"

    def prepare(self) -> None:
        from sparkify.staging import postgres as loader

        loader.ensure_database(self.settings)

    @contextmanager
    def cursor(self, read_only: bool = True) -> Iterator[Any]:
        from sparkify.staging import postgres as loader

        with closing(loader.connect(self.settings)) as con:
            con.set_session(readonly=read_only, autocommit=True)
            with con.cursor() as cur:
                yield cur

    def read_only_query(self, sql: str) -> Rows:
        import psycopg2

        from sparkify.warehouses.readers import ensure_reader, no_reader, scram_password

        pg = self.settings.postgres
        # Without a password, the server's own authentication (trust, peer) admits the reader.
        clause = scram_password(pg.reader_password) if pg.reader_password else ""
        try:
            with self.cursor(read_only=False) as admin:
                ensure_reader(admin, self.settings, pg.reader, clause)
        except psycopg2.Error as error:
            raise no_reader(pg.reader, pg.user, error) from error
        con = psycopg2.connect(
            host=pg.host, port=pg.port, user=pg.reader, password=pg.reader_password, dbname=pg.database
        )
        with closing(con):
            try:
                con.set_session(readonly=True)
                with con.cursor() as cur:
                    return query_rows(cur, sql)
            except psycopg2.Error as error:
                raise refused(error) from error

    def stage_events(self, day: date, key: str | None = None) -> dict[str, object]:
        from sparkify.lake import Lake
        from sparkify.staging import postgres as loader

        lake = Lake(self.settings.lake, self.settings.aws_conn_id)
        return loader.stage_events(self.settings, lake, day, key).__dict__

    def stage_songs(self) -> dict[str, object]:
        from sparkify.lake import Lake
        from sparkify.staging import postgres as loader

        lake = Lake(self.settings.lake, self.settings.aws_conn_id)
        return loader.stage_songs(self.settings, lake).__dict__


WAREHOUSE = Postgres
