"""`jobmaster worker`: run the application's workers in the foreground until a signal."""

from __future__ import annotations

import asyncio
import logging
import sys
import time

import click

from jobmaster.app import JobMaster
from jobmaster.cli.common import (
    EXIT_BAD_INPUT,
    CliError,
    event_loop_name,
    import_app,
    run_worker_coroutine,
)
from jobmaster.config.urls import redact

log = logging.getLogger("jobmaster.cli")


class OneLineFormatter(logging.Formatter):
    """One record per line, UTC timestamps: log shippers split on newlines, tracebacks included."""

    converter = time.gmtime

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s.%(msecs)03dZ %(levelname)-7s %(name)s: %(message)s",
            datefmt="%Y-%m-%dT%H:%M:%S",
        )

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", "\\n")


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def select_workers(app: JobMaster, names: tuple[str, ...]) -> None:
    """Keep only the named workers, so one config file can describe every process of a cluster."""
    if not names:
        return
    configured = [w.name for w in app.config.workers]
    unknown = [n for n in names if n not in configured]
    if unknown:
        raise CliError(
            f"no worker named {', '.join(map(repr, unknown))} in the app's configuration "
            f"(configured: {', '.join(configured) or 'none'})",
            EXIT_BAD_INPUT,
        )
    app._reconfigure(workers=[w.model_dump() for w in app.config.workers if w.name in names])


@click.command()
@click.option("--app", "app_path", required=True, metavar="MODULE:ATTR", help="The JobMaster object.")
@click.option(
    "--worker",
    "names",
    multiple=True,
    metavar="NAME",
    help="Run only this configured worker (repeatable); default: all of them.",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
)
def worker(app_path: str, names: tuple[str, ...], log_level: str) -> None:
    """Run the app's workers; SIGTERM or Ctrl-C stops them gracefully, a second one at once.

    \b
    Example:
      jobmaster worker --app shop.jobs:jm --worker emails
    """
    setup_logging(log_level.upper())
    app = import_app(app_path)
    select_workers(app, names)
    if not app.config.workers:
        raise CliError("the app configures no workers: add_worker() or a [[workers]] table", EXIT_BAD_INPUT)
    log.info(
        "cluster %s on %s: starting worker(s) %s on the %s event loop",
        app.config.cluster_id,
        redact(app.config.master),
        ", ".join(w.name for w in app.config.workers),
        event_loop_name(),
    )
    try:
        run_worker_coroutine(app.run())
    except asyncio.CancelledError:
        log.warning("stopped at once; unfinished jobs return to the master when their leases end")
        raise SystemExit(1) from None
    log.info("all workers stopped")
