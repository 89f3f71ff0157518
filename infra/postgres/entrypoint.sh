#!/bin/bash
# Initialises an empty data folder (superuser POSTGRES_USER with POSTGRES_PASSWORD, password logins
# over TCP, then the scripts of /docker-entrypoint-initdb.d/ against a server listening on its
# socket only), then runs PostgreSQL in the foreground on every interface of the container.
set -euo pipefail
bin=$(echo /usr/lib/postgresql/*/bin)
: "${POSTGRES_USER:?set POSTGRES_USER}" "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    password=$(mktemp)
    printf '%s' "$POSTGRES_PASSWORD" > "$password"
    "$bin/initdb" --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$password" \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$password"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    "$bin/pg_ctl" --pgdata="$PGDATA" --options="-c listen_addresses='' -k /tmp" --wait start >/dev/null
    export PGHOST=/tmp
    for script in /docker-entrypoint-initdb.d/*.sh; do
        [ -e "$script" ] || continue
        if [ -x "$script" ]; then "$script"; else . "$script"; fi
    done
    unset PGHOST
    "$bin/pg_ctl" --pgdata="$PGDATA" --mode=fast --wait stop >/dev/null
fi
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' -k /tmp
