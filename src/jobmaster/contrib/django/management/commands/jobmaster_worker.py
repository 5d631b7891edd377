"""`python manage.py jobmaster_worker`: `jobmaster worker --django` with Django's own settings."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand

from jobmaster.cli.worker import worker


class Command(BaseCommand):
    help = "Run the jobmaster workers of a TASKS entry: `jobmaster worker --django` (docs/django.md)."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--backend", default="default", help="The TASKS entry (default: default).")
        parser.add_argument(
            "--worker", action="append", default=[], help="Run only this worker (repeatable)."
        )
        parser.add_argument("--log-level", action="append", default=[], help="[LOGGER=]LEVEL (repeatable).")
        parser.add_argument("--log-format", choices=["text", "json"], default="text")
        parser.add_argument("--log-jobs", action="store_true", help="Log each job that succeeds at INFO.")
        parser.add_argument("--start-timeout", default=None, help="Wait this long for the master (60s, 5m).")

    def handle(self, *args: Any, **options: Any) -> None:
        argv = ["--django", "--backend", options["backend"], "--log-format", options["log_format"]]
        argv += [f"--worker={name}" for name in options["worker"]]
        argv += [f"--log-level={level}" for level in options["log_level"]]
        if options["log_jobs"]:
            argv.append("--log-jobs")
        if options["start_timeout"] is not None:
            argv.append(f"--start-timeout={options['start_timeout']}")
        worker.main(argv, prog_name="manage.py jobmaster_worker")
