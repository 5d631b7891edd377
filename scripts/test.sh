#!/usr/bin/env bash
# The whole test suite: install, lint, type-check, then every test against real servers.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -c requirements/ci.txt -e '.[dev]'  # exact versions: scripts/lock.sh
bash scripts/services.sh

.venv/bin/ruff check src tests examples
.venv/bin/ruff format --check src tests examples
.venv/bin/mypy
.venv/bin/pytest -q "$@"
