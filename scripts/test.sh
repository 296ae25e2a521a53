#!/usr/bin/env bash
# The whole suite: lint, types, then every test (Docker and the embedded model included).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check bot tests bench
.venv/bin/mypy
# Exit 5 (no tests collected) is a failure here, as it should be.
exec .venv/bin/pytest "$@"
