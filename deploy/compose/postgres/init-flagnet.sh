#!/usr/bin/env bash
# First-start initialisation of the compose federation's PostgreSQL server
# (run once by the postgres image's entrypoint, from
# /docker-entrypoint-initdb.d/, while the data directory is new).
#
# For each agency in FLAGNET_AGENCIES it makes a login role and a database
# of the same name (the agency id with '-' turned into '_', e.g. phelps_so),
# owned by that role and closed to every other role. The role's password is
# the compose secret /run/secrets/postgres-<agency>-password, which is also
# mounted in that agency's node as /run/secrets/db-password.
#
# The node creates and migrates its own schemas (store and audit) in its
# database when it connects, so nothing else is made here.
set -euo pipefail

: "${FLAGNET_AGENCIES:?set FLAGNET_AGENCIES to the agency ids, separated by spaces}"
: "${POSTGRES_USER:=postgres}"

for agency in ${FLAGNET_AGENCIES}; do
    case "${agency}" in
        *[!a-z0-9-]* | "" | -*)
            echo "init-flagnet: refusing agency id ${agency@Q}" >&2
            exit 1
            ;;
    esac
    role="${agency//-/_}"
    password_file="${FLAGNET_SECRETS_DIR:-/run/secrets}/postgres-${agency}-password"
    if [ ! -s "${password_file}" ]; then
        echo "init-flagnet: ${password_file} is missing or empty" >&2
        exit 1
    fi
    # psql quotes :"role" (an identifier) and :'password' (a literal) itself;
    # the password reaches psql through its environment (\getenv, PostgreSQL
    # 15 and later), never on a command line
    FLAGNET_ROLE_PASSWORD="$(tr -d '\r\n' <"${password_file}")" \
        psql --no-psqlrc -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname postgres \
        --set=role="${role}" <<'SQL'
\getenv password FLAGNET_ROLE_PASSWORD
CREATE ROLE :"role" LOGIN PASSWORD :'password' NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
    psql --no-psqlrc -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname "${role}" <<'SQL'
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SQL
    echo "init-flagnet: database and role ${role} for agency ${agency}"
done
