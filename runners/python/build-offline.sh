#!/usr/bin/env bash
# Build the forgebot Python runner image without a container registry (runners/lib.sh does
# the shared steps). It matches runners/python/Dockerfile: python3, pytest, coverage, pip, a
# uid-1000 user, the label org.forgebot.runner.version, working directory /sandbox/repo.
#
# Usage: build-offline.sh [--force] [--image NAME:TAG] [--suite SUITE]
# Exits 0 at once when the image already exists with the right label, unless --force.
set -euo pipefail

RUNNER_NAME=python
RUNNER_VERSION=1  # keep in step with RUNNER_IMAGES in bot/sandbox/docker.py
# pip serves the setup phase (`pip install --user` into $PYTHONUSERBASE under /deps).
RUNNER_PACKAGES="python3,python3-pytest,python3-pip,python-is-python3,ca-certificates,coreutils"
# python3-coverage is optional: include it only where the suite has it.
if apt-cache show python3-coverage >/dev/null 2>&1; then
    RUNNER_PACKAGES="$RUNNER_PACKAGES,python3-coverage"
fi
RUNNER_ENV="PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1"

# shellcheck source=runners/lib.sh
. "$(dirname "$0")/../lib.sh"
runner_build "$@"
