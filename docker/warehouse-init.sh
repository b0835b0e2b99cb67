#!/bin/bash
# The warehouse's first start (postgres image, /docker-entrypoint-initdb.d): the pipeline's login. It may create
# its database and the read-only login of make sql; it is not a superuser.
set -euo pipefail
psql -v ON_ERROR_STOP=1 -v password="$SPARKIFY_PG_PASSWORD" --username "$POSTGRES_USER" --dbname postgres <<'SQL'
create role sparkify login createdb createrole nosuperuser password :'password';
SQL
