"""DuckDB: the embedded default, one file (``SPARKIFY_DUCKDB_PATH``), staged by ``sparkify.staging.duckdb``.

DuckDB allows one writing process per file: every writing task takes the one-slot writer pool. ``make sql``
opens the file read-only, with external access disabled (no file read or written, no ATTACH, no extension)
and the configuration locked, so no statement can turn either back on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import date
from typing import Any

from sparkify.warehouses import DBT_SCHEMAS, Rows, Warehouse, query_rows, refused


class DuckDB(Warehouse):
    name = "duckdb"

    def check(self) -> None:
        """DuckDB names a database file's catalog after the file: a file named like one of the project's
        schemas (``landing.duckdb``) makes every ``landing.<table>`` ambiguous. Refused here, with the fix,
        not at the first query."""
        path = self.settings.duckdb_path
        if path.stem in {self.settings.raw_schema, *DBT_SCHEMAS}:
            raise ValueError(
                f"SPARKIFY_DUCKDB_PATH {path} is named like the schema {path.stem!r}: DuckDB would find its "
                "tables ambiguous; give the file another name (e.g. sparkify.duckdb)"
            )

    def describe(self) -> str:
        # Inside the checkout (the default, .local/), as a person in it names the file; elsewhere in full.
        path, root = self.settings.duckdb_path, self.settings.root
        return f"the DuckDB file {path.relative_to(root) if path.is_relative_to(root) else path}"

    @property
    def writer_pool(self) -> str:
        return self.settings.duckdb_pool

    @contextmanager
    def cursor(self, read_only: bool = True) -> Iterator[Any]:
        import duckdb

        with closing(duckdb.connect(str(self.settings.duckdb_path), read_only=read_only)) as con:
            yield con

    def read_only_query(self, sql: str) -> Rows:
        import duckdb

        config = {"enable_external_access": False, "lock_configuration": True}
        try:
            with closing(
                duckdb.connect(str(self.settings.duckdb_path), read_only=True, config=config)
            ) as con:
                return query_rows(con, sql)
        except duckdb.Error as error:
            raise refused(error) from error

    def stage_events(self, day: date, key: str | None = None) -> dict[str, object]:
        from sparkify.lake import Lake
        from sparkify.staging import duckdb as loader

        settings = self.settings
        with loader.connect(settings.duckdb_path) as con:
            lake = Lake(settings.lake, settings.aws_conn_id)
            return loader.stage_events(con, lake, day, settings.raw_schema, key, settings.allowance).__dict__

    def stage_songs(self) -> dict[str, object]:
        from sparkify.lake import Lake
        from sparkify.staging import duckdb as loader

        settings = self.settings
        with loader.connect(settings.duckdb_path) as con:
            lake = Lake(settings.lake, settings.aws_conn_id)
            return loader.stage_songs(con, lake, settings.raw_schema, settings.allowance).__dict__


WAREHOUSE = DuckDB
