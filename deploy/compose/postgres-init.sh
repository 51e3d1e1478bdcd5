#!/bin/bash
# Runs once, when the PostgreSQL volume is first created: one role and one database per
# service, each database closed to every role but its owner (a service never reads
# another service's tables). Passwords come from <SERVICE>_DB_PASSWORD, default the name.
set -euo pipefail

for service in auth subscriptions billing notifications; do
    password_variable="$(echo "$service" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v name="$service" -v password="${!password_variable:-$service}" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
done
