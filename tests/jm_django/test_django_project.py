"""The Django project under tests/django_project, run by Django's own test runner for each database.

Its tests post to views with Django's test client, and a real `manage.py jobmaster_worker` process
runs the tasks; this runs them once with PostgreSQL settings (Django and the jobmaster master in
one database, so enqueue joins transactions) and once with SQLite files.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from helpers import recreate_pg_databases

PROJECT = Path(__file__).resolve().parents[1] / "django_project"
#: Every test of the project, the transaction ones on PostgreSQL alone.
LABELS = {"postgres": ["shop"], "sqlite": ["shop.tests.ShopTests"]}


@pytest.mark.parametrize("database", ["postgres", "sqlite"])
def test_django_project(database: str, tmp_path: Path) -> None:
    pg_database = f"jobmaster_django_{os.getpid()}"
    env = {
        **os.environ,
        "JMTEST_DJANGO_PG_DB": pg_database,
        "JMTEST_DJANGO_DIR": str(tmp_path),
        "JMTEST_DJANGO_CLUSTER": f"django-{uuid.uuid4().hex[:8]}",
    }
    if database == "postgres":
        asyncio.run(recreate_pg_databases(pg_database))
    try:
        # --keepdb: the database is this test's own, dropped below even while connections remain.
        command = [sys.executable, "manage.py", "test", *LABELS[database], "--noinput", "--keepdb"]
        run = subprocess.run(
            [*command, "--settings", f"shop.settings_{database}", "-v", "2"],
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        if database == "postgres":
            asyncio.run(recreate_pg_databases(pg_database, create=False))
    log = tmp_path / "worker.log"
    worker_log = log.read_text(errors="replace").splitlines()[-40:] if log.exists() else ["(none)"]
    report = "\n".join(
        ["--- worker log (end) ---", *worker_log, "--- Django's test runner ---", run.stdout, run.stderr]
    )
    assert run.returncode == 0, report
    assert " OK" in run.stderr or "\nOK" in run.stderr, run.stderr
