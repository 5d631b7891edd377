#!/usr/bin/env bash
# Regenerate requirements/ci.txt, the exact versions CI installs (scripts/test.sh installs with
# `-c requirements/ci.txt`): `pip freeze` of a fresh venv installed with '.[dev]', the project
# itself left out. Arguments go to that `pip install`: `-c requirements/ci.txt` keeps every version
# already locked (adds what a changed pyproject.toml needs), none takes the newest each range allows.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="$(mktemp -d)"
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install -q "$@" '.[dev]'
{
    echo "# Exact versions for CI (scripts/test.sh). Made by scripts/lock.sh; do not edit by hand."
    echo "# Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())')."
    "$venv/bin/pip" freeze --exclude-editable | grep -iv '^jobmaster[ =]'
} >requirements/ci.txt.new
mv requirements/ci.txt.new requirements/ci.txt
echo "requirements/ci.txt: $(grep -vc '^#' requirements/ci.txt) packages"
