#!/usr/bin/env bash
# The production topology without Docker, on loopback: PostgreSQL (Debian's packages) with its data
# under .seqops/services, an MLflow server and a Prefect server on it, and a Prefect process worker.
#
#   infra/services.sh up       start whatever is not running, wait until healthy, print the exports
#   infra/services.sh down     stop everything it started
#   infra/services.sh status   what runs, and where
#
# Settings (environment): SEQOPS_SERVICES_DIR (state; default .seqops/services), SEQOPS_BIND_HOST
# (default 127.0.0.1), SEQOPS_PG_PORT (5433), SEQOPS_MLFLOW_PORT (5000), SEQOPS_PREFECT_PORT (4200),
# SEQOPS_DB_PASSWORD (default: generated once, kept in the state folder, mode 600),
# SEQOPS_WORK_POOL (seqops-process), SEQOPS_WORKER (1: start a worker; 0: none), PG_BIN.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${SEQOPS_SERVICES_DIR:-$ROOT/.seqops/services}"
mkdir -p "$STATE" && STATE="$(cd "$STATE" && pwd)"
HOST="${SEQOPS_BIND_HOST:-127.0.0.1}"
PG_PORT="${SEQOPS_PG_PORT:-5433}"
MLFLOW_PORT="${SEQOPS_MLFLOW_PORT:-5000}"
PREFECT_PORT="${SEQOPS_PREFECT_PORT:-4200}"
POOL="${SEQOPS_WORK_POOL:-seqops-process}"
BIN="${SEQOPS_VENV:-$ROOT/.venv}/bin"
PGDATA="$STATE/postgres"
PG_BIN="${PG_BIN:-$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)}"

say() { printf 'services: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# PostgreSQL refuses to run as root: as root, its commands run as the postgres user (from /, a
# folder it can always open; every path here is absolute).
as_postgres() {
    if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

password() {
    if [ -n "${SEQOPS_DB_PASSWORD:-}" ]; then printf '%s' "$SEQOPS_DB_PASSWORD"; return; fi
    local file="$STATE/db-password"
    if [ ! -s "$file" ]; then
        (umask 077 && "$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(24), end="")' >"$file")
    fi
    cat "$file"
}

# A pid file names a live process of ours, not whatever process reuses that pid after a reboot.
running() {
    local pid
    pid="$(cat "$STATE/$1.pid" 2>/dev/null)" || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -qaF -- "$BIN/" "/proc/$pid/cmdline" 2>/dev/null
}

port_taken() {  # port
    "$BIN/python" -c 'import socket, sys; sys.exit(socket.socket().connect_ex((sys.argv[1], int(sys.argv[2]))) != 0)' \
        "$HOST" "$1"
}

wait_http() {  # name url seconds
    "$BIN/python" - "$2" "$3" <<'EOF' || die "$1 did not answer at $2; see $STATE/$1.log"
import sys, time, urllib.request
url, deadline = sys.argv[1], time.time() + float(sys.argv[2])
while True:
    try:
        urllib.request.urlopen(url, timeout=2).read()
        break
    except OSError:
        if time.time() > deadline:
            sys.exit(1)
        time.sleep(0.5)
EOF
    # Something answered: it must be ours, not another server that already held the port.
    running "$1" || die "$1 exited; see $STATE/$1.log"
}

start_postgres() {
    [ -x "$PG_BIN/initdb" ] || die "PostgreSQL not found (PG_BIN=$PG_BIN): apt-get install postgresql"
    mkdir -p "$STATE/run"
    if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$STATE"; then
        die "the postgres user cannot open $STATE: set SEQOPS_SERVICES_DIR to a folder every user can reach"
    fi
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        local pwfile="$STATE/run/initdb-password"
        (umask 077 && password >"$pwfile")
        [ "$(id -u)" = 0 ] && chown postgres "$STATE/run" "$pwfile" && mkdir -p "$PGDATA" && chown postgres "$PGDATA"
        as_postgres "$PG_BIN/initdb" -D "$PGDATA" -U seqops --auth=scram-sha-256 --pwfile="$pwfile" \
            --encoding=UTF8 >"$STATE/postgres-init.log" 2>&1 || die "initdb failed; see $STATE/postgres-init.log"
        rm -f "$pwfile"
    fi
    [ "$(id -u)" = 0 ] && chown postgres "$STATE/run"
    if ! as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
        as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$STATE/run/postgres.log" -w -t 60 \
            -o "-h $HOST -p $PG_PORT -k $STATE/run" start >/dev/null || die "PostgreSQL did not start; see $STATE/run/postgres.log"
    fi
    for database in mlflow prefect; do
        PGPASSWORD="$(password)" "$PG_BIN/psql" -h "$HOST" -p "$PG_PORT" -U seqops -d postgres -tAq -v ON_ERROR_STOP=1 \
            -c "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1 ||
            PGPASSWORD="$(password)" "$PG_BIN/psql" -h "$HOST" -p "$PG_PORT" -U seqops -d postgres -q \
                -c "CREATE DATABASE $database"
    done
}

# Each server runs in its own session, so that stopping it stops the processes it forked.
launch() {  # name port command...
    local name="$1" port="$2"; shift 2
    running "$name" && return 0
    if [ "$port" != - ] && port_taken "$port"; then
        die "$name: port $port on $HOST is taken by another program; choose another with SEQOPS_${name^^}_PORT"
    fi
    setsid "$@" >"$STATE/$name.log" 2>&1 < /dev/null &
    echo $! >"$STATE/$name.pid"
}

database_url() { printf 'postgresql%s://seqops:%s@%s:%s/%s' "$1" "$(password)" "$HOST" "$PG_PORT" "$2"; }

up() {
    mkdir -p "$STATE/mlartifacts" "$STATE/prefect"
    start_postgres
    # Database URLs are exported in subshells, never put on a command line: no password in `ps`.
    (
        export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false MLFLOW_BACKEND_STORE_URI
        MLFLOW_BACKEND_STORE_URI="$(database_url '' mlflow)"
        launch mlflow "$MLFLOW_PORT" "$BIN/mlflow" server \
            --artifacts-destination "$STATE/mlartifacts" --serve-artifacts \
            --host "$HOST" --port "$MLFLOW_PORT" --workers 1 \
            --allowed-hosts "localhost:$MLFLOW_PORT,127.0.0.1:$MLFLOW_PORT,$HOST:$MLFLOW_PORT"
    )
    (
        # The UI is told its API's port: on any port but 4200 its pages would wait for the default and fail.
        export PREFECT_HOME="$STATE/prefect" PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_API_DATABASE_CONNECTION_URL
        export PREFECT_UI_API_URL="http://$HOST:$PREFECT_PORT/api"
        PREFECT_API_DATABASE_CONNECTION_URL="$(database_url +asyncpg prefect)"
        launch prefect "$PREFECT_PORT" "$BIN/prefect" server start --host "$HOST" --port "$PREFECT_PORT"
    )
    wait_http mlflow "http://$HOST:$MLFLOW_PORT/health" 180
    wait_http prefect "http://$HOST:$PREFECT_PORT/api/health" 180
    if [ "${SEQOPS_WORKER:-1}" = 1 ]; then
        # The worker runs deployments (infra/prefect.yaml) from this checkout, against these servers.
        launch worker - env PREFECT_HOME="$STATE/prefect" PREFECT_API_URL="http://$HOST:$PREFECT_PORT/api" \
            MLFLOW_TRACKING_URI="http://$HOST:$MLFLOW_PORT" SEQOPS_PROJECT_DIR="$ROOT" \
            MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false \
            PREFECT_WORKER_QUERY_SECONDS="${PREFECT_WORKER_QUERY_SECONDS:-5}" \
            "$BIN/prefect" worker start --pool "$POOL" --type process
    fi
    exports | tee "$STATE/env" >&2
}

exports() {
    printf 'export MLFLOW_TRACKING_URI=http://%s:%s\n' "$HOST" "$MLFLOW_PORT"
    printf 'export PREFECT_API_URL=http://%s:%s/api\n' "$HOST" "$PREFECT_PORT"
}

stop() {  # name
    running "$1" || { rm -f "$STATE/$1.pid"; return 0; }
    local pid; pid="$(cat "$STATE/$1.pid")"
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$STATE/$1.pid"
}

down() {
    stop worker
    stop prefect
    stop mlflow
    if [ -s "$PGDATA/PG_VERSION" ] && as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
        as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
    fi
    say "stopped (data kept in $STATE)"
}

status() {
    for name in mlflow prefect worker; do
        if running "$name"; then say "$name: running (pid $(cat "$STATE/$name.pid"))"; else say "$name: stopped"; fi
    done
    if [ -s "$PGDATA/PG_VERSION" ] && as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
        say "postgres: running on $HOST:$PG_PORT"
    else
        say "postgres: stopped"
    fi
    exports
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) die "usage: $0 up|down|status" ;;
esac
