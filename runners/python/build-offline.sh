#!/usr/bin/env bash
# Build the forgebot Python runner image without a container registry: a minimal Debian root
# made by debootstrap from the same mirror apt already uses, imported with `docker import`.
# It matches runners/python/Dockerfile: python3, pytest, coverage, a uid-1000 user, the label
# org.forgebot.runner.version, working directory /sandbox/repo.
#
# Usage: build-offline.sh [--force] [--image NAME:TAG] [--suite SUITE]
# Exits 0 at once when the image already exists with the right label, unless --force.
set -euo pipefail

RUNNER_VERSION=1  # keep in step with RUNNER_VERSION in bot/sandbox/docker.py
IMAGE="forgebot-runner-python:${RUNNER_VERSION}"
SUITE=""
FORCE=0

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "build-offline: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --force) FORCE=1 ;;
        --image) IMAGE="${2:?--image needs NAME:TAG}"; shift ;;
        --suite) SUITE="${2:?--suite needs a suite name}"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done

command -v docker >/dev/null || die "docker is not installed (scripts/ensure-docker.sh installs it)"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (scripts/ensure-docker.sh starts it)"

current_label() {
    docker image inspect --format '{{ index .Config.Labels "org.forgebot.runner.version" }}' \
        "$IMAGE" 2>/dev/null || true
}

if [ "$FORCE" -eq 0 ] && [ "$(current_label)" = "$RUNNER_VERSION" ]; then
    echo "build-offline: $IMAGE is up to date (runner version $RUNNER_VERSION); --force rebuilds"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "debootstrap needs root"
command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"

if [ -z "$SUITE" ]; then
    # shellcheck disable=SC1091
    SUITE="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
    [ -n "$SUITE" ] || die "cannot tell the Debian suite from /etc/os-release; pass --suite"
fi

# The mirror comes from apt's own configuration (whatever format the sources are in), so the
# build uses the mirror or proxy this machine is allowed to reach.
mirror_from_apt() {
    apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
        awk -v suite="$SUITE" '$2 == suite { print $1; exit }'
}

mirror_from_files() {
    # Fallback when apt has no index targets yet: the first Debian URI in the sources files.
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] && awk '$1 == "deb" && $0 !~ /security/ {
            for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f"
    done
}

MIRROR="$(mirror_from_apt)"
[ -n "$MIRROR" ] || MIRROR="$(mirror_from_files | head -n 1)"
[ -n "$MIRROR" ] || die "no Debian mirror found in apt's sources (/etc/apt/sources.list*)"

PACKAGES="python3,python3-pytest,python-is-python3,ca-certificates,coreutils"
# python3-coverage is optional: include it only where the suite has it.
if apt-cache show python3-coverage >/dev/null 2>&1; then
    PACKAGES="$PACKAGES,python3-coverage"
fi

WORK="$(mktemp -d /var/tmp/forgebot-runner.XXXXXX)"
ROOTFS="$WORK/rootfs"

cleanup() {
    # debootstrap mounts /proc and /sys inside the root and can leave them behind on failure;
    # unmount those before deleting, and never cross into another file system.
    local m
    for m in $(awk -v root="$ROOTFS" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

echo "build-offline: debootstrap $SUITE from $MIRROR with $PACKAGES (1-2 minutes)"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" \
    >"$WORK/debootstrap.log" 2>&1 || { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }

chroot "$ROOTFS" groupadd --gid 1000 runner
chroot "$ROOTFS" useradd --uid 1000 --gid 1000 --create-home --shell /bin/sh runner
# The session mounts its workspace volume over /sandbox; the directories exist in the image
# too, so the image works on its own (docker run) with the same layout.
install -d -o 1000 -g 1000 -m 0755 "$ROOTFS/sandbox" "$ROOTFS/sandbox/repo" "$ROOTFS/sandbox/out"

# Nothing in a sandbox installs packages: drop apt's lists and caches, docs, man pages, logs.
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/cache/debconf/*-old \
    "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
    "$ROOTFS"/var/log/* "$ROOTFS"/tmp/* "$ROOTFS"/root/.cache
find "$ROOTFS/usr/lib" -name '__pycache__' -type d -prune -exec rm -rf {} +

echo "build-offline: importing $IMAGE"
tar --numeric-owner -C "$ROOTFS" -c . | docker import \
    --change 'USER 1000:1000' \
    --change 'WORKDIR /sandbox/repo' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1' \
    --change "LABEL org.forgebot.runner.version=$RUNNER_VERSION" \
    --change 'CMD ["sleep", "infinity"]' \
    - "$IMAGE" >/dev/null

[ "$(current_label)" = "$RUNNER_VERSION" ] || die "imported $IMAGE but its label is wrong"
echo "build-offline: built $IMAGE ($(docker image inspect --format '{{ .Size }}' "$IMAGE" | awk '{ printf "%d MB", $1 / 1000000 }'))"
