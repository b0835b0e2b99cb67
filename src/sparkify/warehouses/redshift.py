"""Amazon Redshift, in production: COPY straight from the S3 lake through the provider's
``S3ToRedshiftOperator`` (``sparkify.staging.redshift``), with the Airflow connections ``redshift_default``
(``SPARKIFY_REDSHIFT_CONN_ID``) and ``aws_default``, and nothing else.

``make sql`` reads through the ``redshift_reader`` connection (``SPARKIFY_REDSHIFT_READER_CONN_ID``), whose login
may only read the warehouse's schemas (created on first use with an md5 password hash, or ``PASSWORD DISABLE``
for IAM-only access).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import TYPE_CHECKING, Any

from sparkify.warehouses import PROFILE_NAME, Rows, Warehouse, query_rows, refused

if TYPE_CHECKING:
    from cosmos import ProfileConfig


class Redshift(Warehouse):
    name = "redshift"
    # A Redshift varchar without a length holds 256 bytes.
    text_type = "varchar(65535)"
    cold_dbt_reason = "the Redshift profile comes from an Airflow connection, resolved per task"
    # Redshift's catalog also holds table statistics, which change with every load.
    stable_catalog = False

    def describe(self) -> str:
        return f"Redshift, through the Airflow connection {self.settings.redshift_conn_id}"

    def profile_config(self) -> ProfileConfig:
        """The ``redshift_default`` connection (the one the COPY tasks use), mapped to a dbt profile by Cosmos."""
        from cosmos import ProfileConfig
        from cosmos.profiles import RedshiftUserPasswordProfileMapping

        return ProfileConfig(
            profile_name=PROFILE_NAME,
            target_name=self.settings.dbt_target,
            profile_mapping=RedshiftUserPasswordProfileMapping(
                conn_id=self.settings.redshift_conn_id, profile_args={"schema": "analytics"}
            ),
        )

    def _connect(self, conn_id: str) -> Any:
        from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

        con = RedshiftSQLHook(redshift_conn_id=conn_id).get_conn()
        con.autocommit = True
        return con

    @contextmanager
    def cursor(self, read_only: bool = True) -> Iterator[Any]:
        with closing(self._connect(self.settings.redshift_conn_id)) as con:
            yield con.cursor()

    def read_only_query(self, sql: str) -> Rows:
        import redshift_connector
        from airflow.sdk import BaseHook

        from sparkify.warehouses.readers import ensure_reader, md5_password, no_reader

        settings = self.settings
        reader = BaseHook.get_connection(settings.redshift_reader_conn_id)
        clause = md5_password(reader.login, reader.password) if reader.password else "password disable"
        try:
            with self.cursor(read_only=False) as admin:
                ensure_reader(admin, settings, reader.login, clause)
        except redshift_connector.Error as error:
            raise no_reader(
                reader.login, f"the {settings.redshift_conn_id} connection's login", error
            ) from error
        with closing(self._connect(settings.redshift_reader_conn_id)) as con:
            try:
                with closing(con.cursor()) as cur:
                    return query_rows(cur, sql)
            except redshift_connector.Error as error:
                raise refused(error) from error

    def staging_tasks(self, batches: Any) -> list[Any]:
        """``prepare`` (the landing tables), then ``stage_events`` (one COPY and publish per day) and the
        ``stage_songs`` task group (COPY, publish)."""
        from sparkify.staging import redshift as loader

        return loader.staging_tasks(self.settings, batches)


WAREHOUSE = Redshift
