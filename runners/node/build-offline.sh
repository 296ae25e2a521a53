#!/usr/bin/env bash
# Build the forgebot Node runner image without a container registry (runners/lib.sh does the
# shared steps). It matches runners/node/Dockerfile: Debian's nodejs and npm, python3 for the
# forgebot-junit converter, a uid-1000 user, the label org.forgebot.runner.version, working
# directory /sandbox/repo, and /node_modules pointing at the setup phase's dependencies.
#
# Usage: build-offline.sh [--force] [--image NAME:TAG] [--suite SUITE]
# Exits 0 at once when the image already exists with the right label, unless --force.
set -euo pipefail

RUNNER_NAME=node
RUNNER_VERSION=1  # keep in step with RUNNER_IMAGES in bot/sandbox/docker.py
RUNNER_PACKAGES="python3,ca-certificates,coreutils"
RUNNER_APT_PACKAGES="nodejs npm"
# npm must never reach for the network on its own in a sandbox; the setup phase installs.
RUNNER_ENV="npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false"

runner_customise() {
    runner_install_junit_tool
    # Node and npm look for node_modules in every parent of the repository, up to /: the
    # setup phase installs into /deps/node (a layer of its snapshot), this link finds it.
    # Until a setup ran, the link dangles and resolution just moves on.
    ln -s /deps/node/node_modules "$ROOTFS/node_modules"
}

# shellcheck source=runners/lib.sh
. "$(dirname "$0")/../lib.sh"
runner_build "$@"
