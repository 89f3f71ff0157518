#!/usr/bin/env bash
# A base image with Python 3.11 made from Debian's packages alone, for hosts that cannot pull from
# Docker Hub: debootstrap (minbase, bookworm) from the mirror apt is configured with, then python3.11,
# its venv module and the CA certificates, then `docker import`. About a minute; needs root.
#
#   infra/base-image.sh [NAME]        # default seqops-base:bookworm; then
#   docker build -f infra/Dockerfile --build-arg BASE_IMAGE=seqops-base:bookworm ...
set -euo pipefail
name=${1:-seqops-base:bookworm}
docker=${DOCKER:-docker}

# The mirror apt uses here (deb822 or one-line sources), else Debian's own.
mirror=$(
    cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list 2>/dev/null |
        grep -E '^(URIs:|deb )' | grep -v security | awk '{print $2; exit}' || true
)
mirror=${DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
echo "base image $name: debootstrap bookworm from $mirror"
debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
chroot "$root" sh -c 'apt-get -o APT::Sandbox::User=root update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3.11 python3.11-venv ca-certificates >/dev/null 2>&1 \
    && apt-get clean && rm -rf /var/lib/apt/lists/*'
tar -C "$root" -c . | "$docker" import - "$name" >/dev/null
echo "base image $name: $("$docker" run --rm "$name" python3 --version)"
