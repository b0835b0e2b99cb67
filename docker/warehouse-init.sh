#!/bin/bash
# The warehouse's first start (postgres image, /docker-entrypoint-initdb.d): the pipeline's login. It may create
# its database and the read-only login of make sql; it is not a superuser.
set -euo pipefail
# The password travels as a psql variable, quoted by format(%L): never part of the script's text.
psql -v ON_ERROR_STOP=1 -v login_password="$SPARKIFY_PG_PASSWORD" --username "$POSTGRES_USER" --dbname postgres <<'SQL'
select format('create role sparkify login createdb createrole nosuperuser password %L', :'login_password') \gexec
SQL
