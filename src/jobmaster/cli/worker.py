"""`jobmaster worker`: run the application's workers in the foreground until a signal."""

from __future__ import annotations

import asyncio
import logging

import click

from jobmaster import logs
from jobmaster.app import JobMaster
from jobmaster.cli.common import (
    EXIT_BAD_INPUT,
    CliError,
    event_loop_name,
    import_app,
    put_cwd_on_path,
    run_worker_coroutine,
)
from jobmaster.config.urls import describe, redact
from jobmaster.errors import JobMasterError

log = logging.getLogger("jobmaster.cli")


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


def load_app(app_path: str | None, with_django: bool, backend: str) -> JobMaster:
    """The app to run; with Django, set up before any application module is imported (they may
    import models), and by default the app of a TASKS entry."""
    if not with_django:
        if app_path is None:
            raise CliError(
                "give the app with --app MODULE:ATTR (or --django in a Django project)", EXIT_BAD_INPUT
            )
        return import_app(app_path)
    try:
        from jobmaster.contrib.django.worker import django_app, setup
    except ImportError as exc:
        raise CliError(
            f"--django needs Django: pip install 'jobmaster[django]' ({exc})", EXIT_BAD_INPUT
        ) from None
    put_cwd_on_path()
    try:
        setup()
        return import_app(app_path) if app_path else django_app(backend)
    except (click.ClickException, JobMasterError):
        raise
    except Exception as exc:
        raise CliError(f"setting up Django failed: {describe(exc)}", EXIT_BAD_INPUT) from None


@click.command()
@click.option(
    "--app",
    "app_path",
    default=None,
    metavar="MODULE:ATTR",
    help="The JobMaster object (optional with --django).",
)
@click.option(
    "--django",
    "with_django",
    is_flag=True,
    help="Set up Django first (DJANGO_SETTINGS_MODULE) and run Django tasks; without --app, the"
    " workers of the TASKS entry named by --backend.",
)
@click.option(
    "--backend",
    default="default",
    show_default=True,
    metavar="ALIAS",
    help="With --django: the TASKS entry whose JobMaster runs.",
)
@click.option(
    "--worker",
    "names",
    multiple=True,
    metavar="NAME",
    help="Run only this configured worker (repeatable); default: all of them.",
)
@click.option(
    "--log-level",
    "log_levels",
    multiple=True,
    metavar="[LOGGER=]LEVEL",
    help="DEBUG, INFO, WARNING or ERROR, for all loggers or one (jobmaster.job=DEBUG); repeatable."
    "  [default: INFO]",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="One line a record: text for people, json (one object a line) for log shippers.",
)
@click.option(
    "--log-config",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="A standard logging configuration (.ini for fileConfig, .json for dictConfig) instead.",
)
@click.option("--log-jobs", is_flag=True, help="Log each job that succeeds at INFO (DEBUG otherwise).")
@click.option(
    "--start-timeout",
    default=None,
    metavar="DURATION",
    help="How long to wait for an unreachable master or agent at start (60s, 5m); 0 fails at once."
    "  [default: wait for as long as it takes]",
)
def worker(
    app_path: str | None,
    with_django: bool,
    backend: str,
    names: tuple[str, ...],
    log_levels: tuple[str, ...],
    log_format: str,
    log_config: str | None,
    log_jobs: bool,
    start_timeout: str | None,
) -> None:
    """Run the app's workers; SIGTERM or Ctrl-C stops them gracefully, a second one at once.

    \b
    Example:
      jobmaster worker --app shop.jobs:jm --worker emails
      jobmaster worker --app shop.jobs:jm --log-format json --log-level jobmaster.job=DEBUG
      DJANGO_SETTINGS_MODULE=shop.settings jobmaster worker --django
    """
    logs.configure(
        fmt=log_format, levels=log_levels or (() if log_config else ("INFO",)), config_file=log_config
    )
    if log_jobs:
        logs.log_successes(logging.INFO)
    app = load_app(app_path, with_django, backend)
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
        run_worker_coroutine(app.run(start_timeout=start_timeout))
    except asyncio.CancelledError:
        log.warning("stopped at once; unfinished jobs return to the master when their leases end")
        raise SystemExit(1) from None
    log.info("all workers stopped")
