#!/usr/bin/env bash
# Creates the databases of the seqops servers, owned by POSTGRES_USER: `mlflow` (tracking store and
# model registry) and `prefect` (Prefect server). The postgres image runs the scripts in
# /docker-entrypoint-initdb.d/ once, when its data volume is empty; the statements are idempotent
# all the same. The entrypoint executes this file, or sources it if the executable bit was lost:
# hence no `set` of shell options and no `exit` on success.
# SEQOPS_DATABASES (space-separated) overrides the list.

seqops_create_databases() {
    local db
    for db in ${SEQOPS_DATABASES:-mlflow prefect}; do
        echo "create-databases.sh: database \"$db\" owned by \"$POSTGRES_USER\""
        psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
            --set db="$db" --set owner="$POSTGRES_USER" <<'SQL' || return 1
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')
\gexec
SQL
    done
}

seqops_create_databases || { echo "create-databases.sh: failed" >&2; exit 1; }
