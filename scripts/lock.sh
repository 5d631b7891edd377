#!/usr/bin/env bash
# Regenerate the exact versions the test command installs (scripts/test.sh passes each with `-c`):
# requirements/ci.txt, `pip freeze` of a fresh Python 3 venv installed with '.[dev]', and
# requirements/django6.txt, the same of a Python 3.12 venv with '.[django,postgres,test]' (the Django 6
# leg), the project itself left out of both. Arguments go to the first `pip install`:
# `-c requirements/ci.txt` keeps every version already locked (adds what a changed pyproject.toml
# needs), none takes the newest each range allows. The Django 6 lock follows suit: with arguments it
# keeps requirements/django6.txt's versions, without them it takes the newest.
set -euo pipefail
cd "$(dirname "$0")/.."

venvs=()
trap 'rm -rf "${venvs[@]}"' EXIT

# lock PYTHON EXTRAS FILE [PIP-INSTALL-ARGS...]: write FILE from a fresh venv of PYTHON.
lock() {
    local python="$1" extras="$2" file="$3"
    shift 3
    local venv
    venv="$(mktemp -d)"
    venvs+=("$venv")
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q "$@" ".[$extras]"
    {
        echo "# Exact versions for CI (scripts/test.sh). Made by scripts/lock.sh; do not edit by hand."
        echo "# Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())')."
        "$venv/bin/pip" freeze --exclude-editable | grep -iv '^jobmaster[ =]'
    } >"$file.new"
    mv "$file.new" "$file"
    echo "$file: $(grep -vc '^#' "$file") packages"
}

python312="$(bash scripts/python312.sh)"
keep_django6=()
if [ "$#" -gt 0 ] && [ -f requirements/django6.txt ]; then
    keep_django6=(-c requirements/django6.txt)
fi
lock python3 dev requirements/ci.txt "$@"
lock "$python312" django,postgres,test requirements/django6.txt "${keep_django6[@]}"
