#!/usr/bin/env bash
# The whole test suite: install, lint, type-check, then every test against real servers; then the
# Django 6 leg: the Django tests again, on real Django 6 under Python 3.12 (the main venv is 3.11, so
# it tests Django 5.2 with the django-tasks backport). Arguments go to the main pytest run only; the
# Django 6 leg always runs its own fixed set (DJANGO6_TESTS).
set -euo pipefail
cd "$(dirname "$0")/.."

DJANGO6_TESTS=(tests/jm_django tests/unit/test_django_mapping.py)
python312="$(bash scripts/python312.sh)"  # first: a missing 3.12 fails now, not after the main run

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -c requirements/ci.txt -e '.[dev]'  # exact versions: scripts/lock.sh
bash scripts/services.sh

.venv/bin/ruff check src tests examples
.venv/bin/ruff format --check src tests examples
.venv/bin/mypy
.venv/bin/pytest -q "$@"

"$python312" -m venv .venv-django6
.venv-django6/bin/pip install -q --upgrade pip >/dev/null
.venv-django6/bin/pip install -q -c requirements/django6.txt -e '.[django,postgres,test]'
echo "Django 6 leg: Django $(.venv-django6/bin/python -c 'import django; print(django.get_version())')"
.venv-django6/bin/pytest -q "${DJANGO6_TESTS[@]}"
