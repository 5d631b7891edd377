"""Plumbing every command shares: which cluster to talk to, how results and errors are shown.

A command reads the cluster either through the user's own `JobMaster` object (`--app`), so it sees
exactly the configuration the workers run with, or from a bare master URL and cluster id for
operators who have no access to the application code.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from jobmaster.app import JobMaster
from jobmaster.config.urls import describe, redact
from jobmaster.db.sqlite import path_from_url
from jobmaster.durations import parse_duration
from jobmaster.errors import JobMasterError, UnavailableError
from jobmaster.jobs.model import Attempt, Job, JobStatus, Priority
from jobmaster.runtime.process import EVENT_LOOPS, event_loop_factory, run_worker_process, uvloop_factory

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

T = TypeVar("T")

#: Tables written to a file or a pipe with no terminal around get room instead of rich's default 80
#: columns, where job ids and times would be cut.
UNATTENDED_WIDTH = 200


def _width() -> int | None:
    streams = (sys.stdin, sys.stdout, sys.stderr)
    return None if any(s is not None and s.isatty() for s in streams) else UNATTENDED_WIDTH


#: Human output; machine output (`--json`) bypasses rich so nothing can wrap or colour it.
console = Console(highlight=False, width=_width())
err_console = Console(stderr=True, highlight=False, width=_width())


class CliError(click.ClickException):
    """An error shown as one red line, never with a traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        err_console.print(f"[red][bold]error:[/bold] {escape(self.message)}[/red]", soft_wrap=True)


# ---- where the cluster comes from --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClusterSource:
    app_path: str | None
    master: str | None
    cluster_id: str | None
    config_file: str | None

    def load(self) -> JobMaster:
        if self.app_path:
            if self.master or self.cluster_id or self.config_file:
                raise click.UsageError(
                    "--app cannot be combined with --master/--cluster/--config: the app object "
                    "carries its own configuration"
                )
            return import_app(self.app_path)
        configured = {"JOBMASTER_CONFIG", "JOBMASTER_CLUSTER_ID"} & set(os.environ)
        if not (self.master or self.cluster_id or self.config_file or configured):
            raise click.UsageError(
                "say which cluster to use: --app module:attribute, or --master URL --cluster ID"
            )
        return JobMaster(self.cluster_id, self.master, config_file=self.config_file)


def cluster_options(func: Callable[..., T]) -> Callable[..., T]:
    """Add --app/--master/--cluster/--config and hand the command one `source` argument."""

    @wraps(func)
    def wrapper(
        *args: Any,
        app_path: str | None,
        master: str | None,
        cluster_id: str | None,
        config_file: str | None,
        **kwargs: Any,
    ) -> T:
        source = ClusterSource(app_path, master, cluster_id, config_file)
        return func(*args, source=source, **kwargs)

    options = [
        click.option(
            "--config",
            "config_file",
            metavar="FILE",
            help="TOML file with [cluster], [[agents]] and [[workers]] tables.",
        ),
        click.option("--cluster", "cluster_id", metavar="ID", help="Cluster id (with --master)."),
        click.option("--master", metavar="URL", help="Master database URL, e.g. sqlite:///jobs.db."),
        click.option(
            "--app",
            "app_path",
            metavar="MODULE:ATTR",
            help="Import the application's JobMaster object, e.g. myproject.jobs:jm.",
        ),
    ]
    decorated: Callable[..., T] = wrapper
    for option in options:
        decorated = option(decorated)
    return decorated


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document instead of tables."
)


def put_cwd_on_path() -> str:
    """Modules of the current directory import as under `python -m` (the app, Django's settings)."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    return cwd


def import_app(path: str) -> JobMaster:
    """Import `module:attribute` the way `python -m` would see it from the current directory."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise CliError(f"--app must look like module:attribute, got {path!r}", EXIT_BAD_INPUT)
    cwd = put_cwd_on_path()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise CliError(
                f"cannot import module {module_name!r} (--app {path}): not found in {cwd} or on sys.path",
                EXIT_BAD_INPUT,
            ) from None
        raise CliError(f"importing {module_name!r} failed: {describe(exc)}{_origin(exc)}") from None
    except click.ClickException:
        raise
    except JobMasterError:
        raise
    except Exception as exc:
        raise CliError(f"importing {module_name!r} failed: {describe(exc)}{_origin(exc)}") from None
    target: Any = module
    for name in attribute.split("."):
        try:
            target = getattr(target, name)
        except AttributeError:
            raise CliError(
                f"module {module_name!r} has no attribute {attribute!r} (--app {path})",
                EXIT_BAD_INPUT,
            ) from None
    if not isinstance(target, JobMaster):
        raise CliError(f"--app {path} is a {type(target).__name__}, not a JobMaster object", EXIT_BAD_INPUT)
    return target


#: The settings of a bench helper process travel in its environment, not on its command line, which
#: every user of the machine can read (`ps`) and which would show the database URLs' passwords.
HELPER_SETTINGS = "JMBENCH_SETTINGS"


#: Which event loop the command's process runs on; helper processes inherit it through this variable.
EVENT_LOOP_ENV = "JOBMASTER_EVENT_LOOP"


def event_loop_name() -> str:
    """The loop `run_coroutine` will use: `auto` is uvloop where it is installed, else asyncio's own."""
    chosen = os.environ.get(EVENT_LOOP_ENV, "auto")
    if chosen not in EVENT_LOOPS:
        raise CliError(f"{EVENT_LOOP_ENV}={chosen!r} is not one of {', '.join(EVENT_LOOPS)}")
    installed = uvloop_factory() is not None
    if chosen == "uvloop" and not installed:
        raise CliError("uvloop is not installed: pip install uvloop, or choose --event-loop asyncio")
    return "uvloop" if chosen != "asyncio" and installed else "asyncio"


def run_coroutine(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on the chosen loop (`event_loop_name`, `jobmaster.runtime.process`)."""
    try:
        factory = event_loop_factory(event_loop_name())
    except CliError:
        main.close()
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def run_worker_coroutine(main: Coroutine[Any, Any, T]) -> T:
    """`run_coroutine` for a process whose work is running jobs: the process is tuned as well."""
    try:
        name = event_loop_name()
    except CliError:
        main.close()
        raise
    return run_worker_process(main, event_loop=name)


def helper_env(settings: dict[str, Any]) -> dict[str, str]:
    return {**os.environ, HELPER_SETTINGS: json.dumps(settings)}


def helper_settings() -> dict[str, Any]:
    settings: dict[str, Any] = json.loads(os.environ[HELPER_SETTINGS])
    return settings


def stdin_closed(loop: asyncio.AbstractEventLoop) -> asyncio.Event:
    """An event set once standard input closes: how a helper process learns that the process that
    started it (holding the pipe) is gone, however abruptly it ended."""
    closed = asyncio.Event()

    def watch() -> None:
        # The raw descriptor, not sys.stdin: a thread blocked in the buffered reader holds its lock,
        # and the interpreter then aborts at exit if the process ends first.
        fd = sys.stdin.fileno()
        while os.read(fd, 65536):
            pass
        loop.call_soon_threadsafe(closed.set)

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()
    return closed


def _origin(exc: BaseException) -> str:
    """Where the user's module broke, since no traceback is shown."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" ({exc.filename}:{exc.lineno})"
    frames = traceback.extract_tb(exc.__traceback__)
    return f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""


@asynccontextmanager
async def opened(app: JobMaster, *, must_exist: bool = True) -> AsyncIterator[JobMaster]:
    """Open the app for reading; refuse to silently create an empty SQLite file from a typo."""
    if must_exist:
        check_exists(app.config.master)
    try:
        await app.open()
    except UnavailableError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot connect to {redact(app.config.master)}: {describe(exc)}") from None
    try:
        yield app
    finally:
        await app.close()


def run_opened(app: JobMaster, action: Callable[[JobMaster], Awaitable[T]], *, must_exist: bool = True) -> T:
    """Run one command's `action` on `app`, opened for it (see `opened`) and closed after."""

    async def run() -> T:
        async with opened(app, must_exist=must_exist):
            return await action(app)

    return run_coroutine(run())


def check_exists(url: str) -> None:
    if not url.lower().startswith("sqlite:"):
        return
    try:
        path = path_from_url(url)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_BAD_INPUT) from None
    if path != ":memory:" and not Path(path).exists():
        raise CliError(
            f"master database {path} does not exist (check --master, or create it with "
            "`jobmaster db upgrade`)",
            EXIT_BAD_INPUT,
        )


# ---- parameter types ---------------------------------------------------------------------------


class AwareDateTime(click.ParamType):
    """ISO-8601 with an explicit offset: a naive time would be read in an unknown zone."""

    name = "ISO8601"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(f"{value!r} is not an ISO-8601 time such as 2030-01-31T09:00:00+01:00", param, ctx)
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            self.fail(f"{value!r} has no UTC offset; add one, e.g. {value}Z or {value}+02:00", param, ctx)
        return parsed


class Duration(click.ParamType):
    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            seconds = parse_duration(value)
        except ValueError:
            self.fail(f"{value!r} is not a duration such as 250ms, 30s, 10m or 2h", param, ctx)
        if seconds < 0:
            self.fail(f"{value!r} is negative", param, ctx)
        return seconds


class JsonObject(click.ParamType):
    name = "JSON"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dict):
            return value
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            self.fail(f"not valid JSON ({exc.msg} at character {exc.pos})", param, ctx)
        if not isinstance(parsed, dict):
            self.fail(f"must be a JSON object, got {type(parsed).__name__}", param, ctx)
        return parsed


STATUS_CHOICE = click.Choice([s.name for s in JobStatus], case_sensitive=False)
PRIORITY_CHOICE = click.Choice([p.name for p in Priority], case_sensitive=False)


def when_options(func: Callable[..., T]) -> Callable[..., T]:
    """--at / --delay, shared by `schedule` and `jobs reschedule`."""
    func = click.option("--delay", type=Duration(), help="Run after this long, e.g. 30s, 10m, 2h.")(func)
    return click.option(
        "--at", "at", type=AwareDateTime(), help="Run at this time, e.g. 2030-01-31T09:00:00Z."
    )(func)


def check_when(at: datetime | None, delay: float | None, *, required: bool) -> None:
    if at is not None and delay is not None:
        raise click.UsageError("pass either --at or --delay, not both")
    if required and at is None and delay is None:
        raise click.UsageError("pass --at TIME or --delay DURATION")


# ---- rendering ---------------------------------------------------------------------------------


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def show_time(ts: float | None) -> str:
    """Tables use second precision with a Z; JSON keeps the full ISO-8601 value."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def job_dict(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "handler": job.definition_id,
        "status": job.status.name,
        "priority": job.priority.name,
        "lane": job.lane,
        "data": job.data,
        "metadata": job.metadata,
        "scheduled_at": iso(job.scheduled_at),
        "original_scheduled_at": iso(job.original_scheduled_at),
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "attempts": job.attempts,
        "attempt_limit": job.attempt_limit,
        "max_retries": job.max_retries,
        "timeout_s": job.timeout_s,
        "version": job.version,
        "bucket_id": job.bucket_id,
        "worker_id": job.worker_id,
        "lease_expires_at": iso(job.lease_expires_at),
        "cancel_requested": job.cancel_requested,
        "last_error": job.last_error,
        "result": job.result,
    }


def attempt_dict(attempt: Attempt) -> dict[str, Any]:
    return {
        "attempt": attempt.attempt,
        "worker_id": attempt.worker_id,
        "started_at": iso(attempt.started_at),
        "finished_at": iso(attempt.finished_at),
        "duration_s": round(attempt.finished_at - attempt.started_at, 6),
        "outcome": attempt.outcome,
        "error": attempt.error,
    }


def emit_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, default=str))


def emit_value(as_json: bool, key: str, value: Any) -> None:
    """A command's one value (an id, a count): `{key: value}` with --json, else the bare value
    (plain, so a script can capture it)."""
    if as_json:
        emit_json({key: value})
    else:
        click.echo(value)


def emit_or_say(as_json: bool, document: Any, message: str) -> None:
    """A command's outcome: the document with --json, else a line for people (rich markup)."""
    if as_json:
        emit_json(document)
    else:
        console.print(message)


def emit_report(report: dict[str, Any], title: str, as_json: bool) -> None:
    """A benchmark's report: the JSON document, or a table of metric and value (a nested section
    such as the worker settings as `section.name` rows, a missing figure as `-`)."""
    if as_json:
        emit_json(report)
        return
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in report.items():
        rows = {f"{key}.{name}": v for name, v in value.items()} if isinstance(value, dict) else {key: value}
        for name, shown in rows.items():
            table.add_row(name, "-" if shown is None else str(shown))
    console.print(table)


def status_names(values: Sequence[str]) -> list[JobStatus]:
    """Click's case-insensitive Choice hands back the canonical member name."""
    return [JobStatus[v] for v in values]
