#!/usr/bin/env bash
# The whole suite: lint, types, then every test (Docker and the embedded model included).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check bot tests bench runners/tools
.venv/bin/mypy
# A private PostgreSQL cluster for the store tests (installed and started when missing).
# Two lines, so that a failure of the script stops this one under set -e.
FORGEBOT_TEST_POSTGRES_URL=$(bash scripts/ensure-postgres.sh)
export FORGEBOT_TEST_POSTGRES_URL
# Debian's Chromium and chromedriver for the dashboard's browser tests.
bash scripts/ensure-chromium.sh >/dev/null
# Exit 5 (no tests collected) is a failure here, as it should be.
exec .venv/bin/pytest "$@"
