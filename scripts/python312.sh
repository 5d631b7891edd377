#!/usr/bin/env bash
# Print the path of a Python 3.12 interpreter, for the Django 6 leg of scripts/test.sh and its lock
# (Django 6 needs Python 3.12; the project's own venv runs 3.11). Tries $PYTHON312, then `python3.12`
# on PATH, then pyenv's installs. None: say what is missing and how to get it, and fail (no skip).
set -euo pipefail

pyenv_root="$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")"
for candidate in "${PYTHON312:-}" python3.12 "$pyenv_root"/versions/3.12*/bin/python3.12; do
    # a pyenv shim exists even when 3.12 is not selected, so ask the interpreter itself
    if [ -n "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
        command -v "$candidate"
        exit 0
    fi
done
cat >&2 <<'MESSAGE'
Python 3.12 is missing: the Django 6 tests (the second leg of scripts/test.sh) need it, as Django 6
does. Tried $PYTHON312, `python3.12` on PATH and pyenv's versions/3.12*. Install it (for instance
`pyenv install 3.12`, or your system's python3.12 package), or point PYTHON312 at its interpreter.
MESSAGE
exit 1
