#!/bin/bash
# A PostgreSQL server's first start (postgres image, /docker-entrypoint-initdb.d): the one login a service of the
# stack uses, never a superuser. LOGIN_ROLE, LOGIN_PASSWORD, LOGIN_ATTRIBUTES (what the role may do beyond
# logging in) and, optionally, LOGIN_DATABASE (created, owned by the role) come from the service's environment.
set -euo pipefail
if [[ ! "$LOGIN_ATTRIBUTES" =~ ^[a-z\ ]*$ ]]; then
    echo "LOGIN_ATTRIBUTES may hold only role attributes (lowercase words): $LOGIN_ATTRIBUTES" >&2
    exit 1
fi
# The role's name and password travel as psql variables, quoted by format(): never part of the SQL text.
psql -v ON_ERROR_STOP=1 -v role="$LOGIN_ROLE" -v login_password="$LOGIN_PASSWORD" --username "$POSTGRES_USER" \
    --dbname postgres <<SQL
select format('create role %I login nosuperuser $LOGIN_ATTRIBUTES password %L', :'role', :'login_password') \\gexec
SQL
if [ -n "${LOGIN_DATABASE:-}" ]; then
    createdb --username "$POSTGRES_USER" --owner "$LOGIN_ROLE" "$LOGIN_DATABASE"
fi
