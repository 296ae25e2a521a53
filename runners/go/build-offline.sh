#!/usr/bin/env bash
# Build the forgebot Go runner image without a container registry (runners/lib.sh does the
# shared steps). It matches runners/go/Dockerfile: Debian's golang, python3 for the
# forgebot-junit converter, a uid-1000 user, the label org.forgebot.runner.version, working
# directory /sandbox/repo, no module proxy (GOPROXY=off) and no cgo.
#
# Usage: build-offline.sh [--force] [--image NAME:TAG] [--suite SUITE]
# Exits 0 at once when the image already exists with the right label, unless --force.
set -euo pipefail

RUNNER_NAME=go
RUNNER_VERSION=1  # keep in step with RUNNER_IMAGES in bot/sandbox/docker.py
RUNNER_PACKAGES="golang-go,python3,ca-certificates,coreutils"
# No network in a sandbox: modules come from the setup phase's cache under /deps; no C
# compiler in the image, so no cgo.
RUNNER_ENV="CGO_ENABLED=0 GOPROXY=off GOFLAGS=-modcacherw GOMODCACHE=/deps/go/mod GOCACHE=/tmp/go-build GOTOOLCHAIN=local"

runner_customise() {
    runner_install_junit_tool
}

# shellcheck source=runners/lib.sh
. "$(dirname "$0")/../lib.sh"
runner_build "$@"
