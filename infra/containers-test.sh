#!/usr/bin/env bash
# `make containers-test`: build the images and run the compose stack end to end, then remove all it made.
#
# 1. A Docker engine: the running one, else Debian's docker.io (+ docker-compose, debootstrap) is
#    installed and dockerd started; where none can start, the test says so and is skipped.
# 2. Images without Docker Hub: a Python 3.11 base from Debian's packages (infra/base-image.sh), the
#    seqops image on it (torch's wheel from the host's pip, the host's CA bundle as a build secret),
#    and PostgreSQL from Debian's packages (infra/postgres/Dockerfile).
# 3. The stack with the auth profile, every service healthy; a smoke pipeline in the worker against
#    the containerised MLflow and Prefect; `seqops predict` from the registry in the worker; the auth
#    MLflow refuses a request without credentials and accepts one with them; PostgreSQL is not
#    reachable from the host; the registry and the flow runs survive `down` + `up`.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
say() { printf 'containers-test [%4ss] %s\n' "$(($(date +%s) - started))" "$*"; }
fail() { say "FAILED: $*"; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- 1. the engine -----------------------------------------------------------------------------
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} from Debian's packages"
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq "${missing[@]}" >/dev/null || true
fi
docker=docker
[ -x /usr/bin/docker ] && docker=/usr/bin/docker  # Debian's client, the daemon's own version
dockerd_pid=
if ! $docker info >/dev/null 2>&1 && command -v dockerd >/dev/null; then
    # Not through as_root: a backgrounded function is a subshell, and its PID would not stop dockerd.
    if [ "$(id -u)" = 0 ]; then
        dockerd >/tmp/seqops-dockerd.log 2>&1 &
    else
        sudo dockerd >/tmp/seqops-dockerd.log 2>&1 &
    fi
    dockerd_pid=$!
    for _ in $(seq 30); do $docker info >/dev/null 2>&1 && break; sleep 1; done
fi
if ! { $docker info && command -v docker-compose && command -v debootstrap; } >/dev/null 2>&1; then
    say "SKIPPED: no Docker engine (with docker-compose and debootstrap) can start on this machine" \
        "($(tail -n1 /tmp/seqops-dockerd.log 2>/dev/null || echo 'no dockerd'))"
    [ -n "$dockerd_pid" ] && as_root kill "$dockerd_pid" 2>/dev/null
    exit 0
fi
say "engine: Docker $($docker version --format '{{.Server.Version}}'), $(docker-compose version --short)"

tag=seqops-ci-$$
project=seqops-containers-test
work=$(mktemp -d)
compose=(docker-compose --project-name "$project" --env-file "$work/env" --profile auth
    -f infra/docker-compose.yml)
cleanup() {
    set +e
    [ -f "$work/env" ] && "${compose[@]}" down --volumes --remove-orphans >/dev/null 2>&1
    $docker rmi -f "seqops:latest" "$tag-postgres" "$tag-base" >/dev/null 2>&1
    rm -rf "$work" infra/wheels/torch-*.whl
    if [ -n "$dockerd_pid" ]; then  # an engine of its own: its build cache goes too
        $docker builder prune --all --force >/dev/null 2>&1
        as_root kill "$dockerd_pid"
        for _ in $(seq 30); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 1; done
    fi
    say "removed the stack, its volumes and images"
}
trap cleanup EXIT

# --- 2. the images -----------------------------------------------------------------------------
DOCKER=$docker as_root infra/base-image.sh "$tag-base"
.venv/bin/pip download --quiet --no-deps "torch==$(sed -n 's/^TORCH_VERSION := //p' Makefile)" -d infra/wheels
ca_bundle=$(.venv/bin/python -c \
    "import os, ssl; print(os.environ.get('PIP_CERT') or ssl.get_default_verify_paths().cafile or '')")
secret=()
[ -f "$ca_bundle" ] && secret=(--secret "id=ca_bundle,src=$ca_bundle")
build_started=$(date +%s)
DOCKER_BUILDKIT=1 $docker build --progress=plain -f infra/Dockerfile --build-arg "BASE_IMAGE=$tag-base" \
    "${secret[@]}" -t seqops:latest . >"$work/build.log" 2>&1 \
    || { tail -n 30 "$work/build.log"; fail "the seqops image did not build"; }
size=$($docker image inspect seqops:latest --format '{{.Size}}' | awk '{printf "%.2f GB", $1 / 1e9}')
say "seqops image: built in $(($(date +%s) - build_started)) s, $size"
DOCKER_BUILDKIT=1 $docker build --progress=plain -f infra/postgres/Dockerfile \
    --build-arg "BASE_IMAGE=$tag-base" -t "$tag-postgres" infra/postgres >"$work/build.log" 2>&1 \
    || { tail -n 30 "$work/build.log"; fail "the PostgreSQL image did not build"; }
[ "$($docker run --rm seqops:latest id -u)" != 0 ] || fail "the seqops image runs as root"

# --- 3. the stack ------------------------------------------------------------------------------
secret_word() { .venv/bin/python -c "import secrets; print(secrets.token_hex(16))"; }
admin_password=$(secret_word)
# Absolute, and exported too: compose prefers the shell's variables to the env file's.
SEQOPS_DATA_DIR=$(cd "${SEQOPS_DATA_DIR:-../shared/data}" && pwd) || fail "no data folder (SEQOPS_DATA_DIR)"
export SEQOPS_DATA_DIR
cat >"$work/env" <<EOF
SEQOPS_DB_PASSWORD=$(secret_word)
MLFLOW_ADMIN_PASSWORD=$admin_password
MLFLOW_FLASK_SERVER_SECRET_KEY=$(secret_word)
SEQOPS_POSTGRES_IMAGE=$tag-postgres
SEQOPS_DATA_DIR=$SEQOPS_DATA_DIR
EOF

wait_healthy() {
    local deadline=$(($(date +%s) + 300)) states
    while :; do
        states=$($docker inspect --format '{{.Name}}={{if .State.Health}}{{.State.Health.Status}}{{else}}no-healthcheck{{end}}' \
            $("${compose[@]}" ps -q))
        grep -qv '=healthy$' <<<"$states" || break
        [ "$(date +%s)" -lt "$deadline" ] || fail "services not healthy after 300 s: $(tr '\n' ' ' <<<"$states")"
        sleep 3
    done
    say "every service healthy: $(sed 's/^\/[a-z-]*_\([a-z-]*\)_[0-9]*=.*/\1/' <<<"$states" | tr '\n' ' ')"
}
in_worker() { "${compose[@]}" exec -T prefect-worker "$@"; }

up() { "${compose[@]}" up -d --no-build >"$work/up.log" 2>&1 || { tail -n 20 "$work/up.log"; fail "$1"; }; }
up "docker-compose up failed"
wait_healthy
in_worker seqops pipeline --profile smoke --task sentiment --cell gru >"$work/pipeline.log" 2>&1 \
    || { tail -n 30 "$work/pipeline.log"; fail "the smoke pipeline failed in the worker"; }
say "smoke pipeline: trained and registered in the containerised MLflow, tracked by the Prefect server"
versions() {
    curl -fsS "http://127.0.0.1:5000/api/2.0/mlflow/registered-models/get?name=seqops-sentiment" |
        .venv/bin/python -c "import json, sys; print(len(json.load(sys.stdin)['registered_model']['latest_versions']))"
}
flow_runs() {
    curl -fsS -X POST -H 'Content-Type: application/json' -d '{}' http://127.0.0.1:4200/api/flow_runs/count
}
before=$(versions)
runs_before=$(flow_runs)
[ "$runs_before" -gt 0 ] || fail "the Prefect server recorded no flow run"

printf '%s\n' '{"text": "a gripping, funny film"}' '{"text": ""}' '{"text": "dull and far too long"}' |
    in_worker sh -c 'cat > /tmp/rows.jsonl && seqops predict --model models:/seqops-sentiment@champion \
        -i /tmp/rows.jsonl -o /tmp/predictions.jsonl --no-progress >/dev/null && cat /tmp/predictions.jsonl' \
    >"$work/predictions.jsonl" || fail "seqops predict failed in the worker"
[ "$(grep -c '"label"' "$work/predictions.jsonl")" = 2 ] || fail "seqops predict: $(cat "$work/predictions.jsonl")"
say "seqops predict from the registry: 2 predictions (the empty row went to the error file)"

search=http://127.0.0.1:5001/api/2.0/mlflow/experiments/search?max_results=1
[ "$(curl -s -o /dev/null -w '%{http_code}' "$search")" = 401 ] || fail "the auth MLflow answered without credentials"
[ "$(curl -s -o /dev/null -w '%{http_code}' -u "admin:$admin_password" "$search")" = 200 ] \
    || fail "the auth MLflow refused its admin"
say "auth MLflow: 401 without credentials, 200 with them"

# No host port leads to PostgreSQL, and no container outside the `backend` network reaches it. (The
# host's own network namespace can still open the container's bridge address, as with any Docker
# bridge network on Linux: there the database password is the guard.)
postgres_ip=$($docker inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' \
    "$("${compose[@]}" ps -q postgres)")
[ -z "$($docker port "$("${compose[@]}" ps -q postgres)")" ] || fail "PostgreSQL publishes a port"
for address in 127.0.0.1 $(hostname -I 2>/dev/null); do
    ! timeout 3 bash -c "</dev/tcp/$address/5432" 2>/dev/null || fail "PostgreSQL answers on the host's $address:5432"
done
$docker run --rm --network "${project}_default" seqops:latest python -c "
import socket, sys
try:
    socket.create_connection(('$postgres_ip', 5432), timeout=3)
except OSError:
    sys.exit(0)
sys.exit('reached')" || fail "PostgreSQL answers a container outside its network"
say "PostgreSQL: no host port (127.0.0.1 and $(hostname -I 2>/dev/null | wc -w) host addresses refuse), unreachable from outside its network"

"${compose[@]}" down >/dev/null 2>&1
up "docker-compose up (again) failed"
wait_healthy
after=$(versions)
[ "$after" = "$before" ] && [ "$(flow_runs)" = "$runs_before" ] \
    || fail "data lost across down + up: versions $before -> $after, flow runs $runs_before -> $(flow_runs)"
say "down + up: the registry ($after version) and the $runs_before flow runs are still there"
say "passed in $(($(date +%s) - started)) s"
