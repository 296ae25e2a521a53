# Shared steps of the offline runner builds (runners/*/build-offline.sh): a minimal Debian
# root made by debootstrap from the mirror apt already uses, a uid-1000 user, the /sandbox
# layout, stripped of what a sandbox never needs, imported with `docker import`.
#
# A build script sets these, sources this file, defines the optional hook `runner_customise`
# (runs with the root filesystem at $ROOTFS, before stripping) and calls `runner_build "$@"`:
#
#   RUNNER_NAME       the toolchain, e.g. node (the image is forgebot-runner-$RUNNER_NAME)
#   RUNNER_VERSION    the org.forgebot.runner.version label; keep in step with RUNNER_IMAGES
#                     in bot/sandbox/docker.py
#   RUNNER_PACKAGES   comma-separated Debian packages for debootstrap --include
#   RUNNER_APT_PACKAGES  space-separated packages installed afterwards with apt-get inside
#                     the root: debootstrap's own resolver fails on large dependency trees
#                     (npm's ~300 node-* packages), apt's does not
#   RUNNER_ENV        extra `ENV` pairs for docker import (space-separated KEY=VALUE)
#
# Usage of every build script: build-offline.sh [--force] [--image NAME:TAG] [--suite SUITE]
# It exits 0 at once when the image already exists with the right label, unless --force.

# shellcheck shell=bash

RUNNERS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The environment every runner image starts with; a session replaces it with the bot's own.
RUNNER_BASE_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8"

runner_die() { echo "build-offline ($RUNNER_NAME): $*" >&2; exit 1; }
runner_say() { echo "build-offline ($RUNNER_NAME): $*"; }

runner_usage() {
    echo "usage: $0 [--force] [--image NAME:TAG] [--suite SUITE]"
    echo "Builds forgebot-runner-$RUNNER_NAME:$RUNNER_VERSION from Debian packages (no registry)."
}

runner_parse_args() {
    IMAGE="forgebot-runner-${RUNNER_NAME}:${RUNNER_VERSION}"
    SUITE=""
    FORCE=0
    while [ $# -gt 0 ]; do
        case "$1" in
            --force) FORCE=1 ;;
            --image) IMAGE="${2:?--image needs NAME:TAG}"; shift ;;
            --suite) SUITE="${2:?--suite needs a suite name}"; shift ;;
            -h|--help) runner_usage; exit 0 ;;
            *) runner_usage >&2; runner_die "unknown argument: $1" ;;
        esac
        shift
    done
}

runner_current_label() {
    docker image inspect --format '{{ index .Config.Labels "org.forgebot.runner.version" }}' \
        "$IMAGE" 2>/dev/null || true
}

runner_check_host() {
    command -v docker >/dev/null || runner_die "docker is not installed (scripts/ensure-docker.sh installs it)"
    docker info >/dev/null 2>&1 || runner_die "the Docker engine does not answer (scripts/ensure-docker.sh starts it)"
}

runner_check_build_host() {
    [ "$(id -u)" -eq 0 ] || runner_die "debootstrap needs root"
    command -v debootstrap >/dev/null || runner_die "debootstrap is not installed (apt-get install debootstrap)"
}

runner_pick_suite() {
    if [ -z "$SUITE" ]; then
        # shellcheck disable=SC1091
        SUITE="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
        [ -n "$SUITE" ] || runner_die "cannot tell the Debian suite from /etc/os-release; pass --suite"
    fi
}

# The mirror comes from apt's own configuration (whatever format the sources are in), so the
# build uses the mirror or proxy this machine is allowed to reach.
runner_mirror_from_apt() {
    # shellcheck disable=SC2016 # $(REPO_URI) is apt's own format, not the shell's
    apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
        awk -v suite="$SUITE" '$2 == suite { print $1; exit }'
}

runner_mirror_from_files() {
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

runner_pick_mirror() {
    MIRROR="$(runner_mirror_from_apt)"
    [ -n "$MIRROR" ] || MIRROR="$(runner_mirror_from_files | head -n 1)"
    [ -n "$MIRROR" ] || runner_die "no Debian mirror found in apt's sources (/etc/apt/sources.list*)"
}

runner_cleanup() {
    # debootstrap (and runner_customise) mount /proc and /sys inside the root and can leave
    # them behind on failure; unmount those before deleting, never crossing file systems.
    local m
    [ -n "${ROOTFS:-}" ] || return 0
    # shellcheck disable=SC2013 # mount points under our own temporary folder have no spaces
    for m in $(awk -v root="$ROOTFS" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf --one-file-system "$WORK"
}

runner_debootstrap() {
    WORK="$(mktemp -d /var/tmp/forgebot-runner.XXXXXX)"
    ROOTFS="$WORK/rootfs"
    trap runner_cleanup EXIT
    runner_say "debootstrap $SUITE from $MIRROR with $RUNNER_PACKAGES (a few minutes)"
    debootstrap --variant=minbase --include="$RUNNER_PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" \
        >"$WORK/debootstrap.log" 2>&1 || {
        tail -n 30 "$WORK/debootstrap.log" >&2
        [ -f "$ROOTFS/debootstrap/debootstrap.log" ] && tail -n 30 "$ROOTFS/debootstrap/debootstrap.log" >&2
        runner_die "debootstrap failed"
    }
    if [ -n "${RUNNER_APT_PACKAGES:-}" ]; then
        runner_say "apt-get install $RUNNER_APT_PACKAGES"
        # shellcheck disable=SC2086 # a list of package names
        runner_chroot_run sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends $RUNNER_APT_PACKAGES" \
            >"$WORK/apt.log" 2>&1 || { tail -n 30 "$WORK/apt.log" >&2; runner_die "apt-get install failed"; }
    fi
}

runner_add_user() {
    chroot "$ROOTFS" groupadd --gid 1000 runner
    chroot "$ROOTFS" useradd --uid 1000 --gid 1000 --create-home --shell /bin/sh runner
    # The session mounts its workspace volume over /sandbox; the folders exist in the image
    # too, so the image works on its own (docker run) with the same layout.
    install -d -o 1000 -g 1000 -m 0755 "$ROOTFS/sandbox" "$ROOTFS/sandbox/repo" "$ROOTFS/sandbox/out"
}

# Copy the JUnit converter shared by the node and go images (runners/tools/forgebot_junit.py).
runner_install_junit_tool() {
    install -D -o 0 -g 0 -m 0755 "$RUNNERS_DIR/tools/forgebot_junit.py" \
        "$ROOTFS/usr/local/bin/forgebot-junit"
}

# Run a command inside the root with /proc and /dev mounted (a compiler or a runtime needs
# them); runner_cleanup unmounts whatever is left on failure.
runner_chroot_run() {
    mount -t proc proc "$ROOTFS/proc"
    mount --bind /dev "$ROOTFS/dev"
    local status=0
    # shellcheck disable=SC2086 # KEY=VALUE pairs, split on purpose
    chroot "$ROOTFS" env -i $RUNNER_BASE_ENV HOME=/root "$@" || status=$?
    umount "$ROOTFS/dev"
    umount "$ROOTFS/proc"
    return "$status"
}

runner_strip() {
    # Nothing in a sandbox installs Debian packages: drop apt's lists and caches, docs, man
    # pages, logs and byte-code caches.
    rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/cache/debconf/*-old \
        "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
        "$ROOTFS"/var/log/* "$ROOTFS"/tmp/* "$ROOTFS"/root/.cache
    find "$ROOTFS/usr/lib" -name '__pycache__' -type d -prune -exec rm -rf {} +
}

runner_import() {
    runner_say "importing $IMAGE"
    tar --numeric-owner -C "$ROOTFS" -c . | docker import \
        --change 'USER 1000:1000' \
        --change 'WORKDIR /sandbox/repo' \
        --change "ENV $RUNNER_BASE_ENV ${RUNNER_ENV:-}" \
        --change "LABEL org.forgebot.runner.version=$RUNNER_VERSION org.forgebot.runner.toolchain=$RUNNER_NAME" \
        --change 'CMD ["sleep", "infinity"]' \
        - "$IMAGE" >/dev/null
    [ "$(runner_current_label)" = "$RUNNER_VERSION" ] || runner_die "imported $IMAGE but its label is wrong"
    runner_say "built $IMAGE ($(docker image inspect --format '{{ .Size }}' "$IMAGE" |
        awk '{ printf "%d MB", $1 / 1000000 }'))"
}

runner_build() {
    runner_parse_args "$@"
    runner_check_host
    if [ "$FORCE" -eq 0 ] && [ "$(runner_current_label)" = "$RUNNER_VERSION" ]; then
        runner_say "$IMAGE is up to date (runner version $RUNNER_VERSION); --force rebuilds"
        exit 0
    fi
    runner_check_build_host
    runner_pick_suite
    runner_pick_mirror
    runner_debootstrap
    runner_add_user
    if declare -F runner_customise >/dev/null; then
        runner_customise
    fi
    runner_strip
    runner_import
}
