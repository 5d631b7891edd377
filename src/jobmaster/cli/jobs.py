"""`jobmaster schedule` and `jobmaster jobs ...`: one job at a time, from a shell."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from jobmaster.app import JobMaster
from jobmaster.cli.common import (
    PRIORITY_CHOICE,
    STATUS_CHOICE,
    ClusterSource,
    Duration,
    JsonObject,
    attempt_dict,
    check_when,
    cluster_options,
    console,
    emit_json,
    emit_or_say,
    emit_value,
    import_app,
    job_dict,
    json_option,
    run_opened,
    show_time,
    status_names,
    when_options,
)
from jobmaster.jobs.model import Attempt, Job
from jobmaster.jobs.paging import encode_cursor

T = TypeVar("T")

# ---- schedule ----------------------------------------------------------------------------------


@click.command()
@click.option(
    "--app",
    "app_path",
    required=True,
    metavar="MODULE:ATTR",
    help="The application's JobMaster object; it knows the handlers.",
)
@click.argument("handler_id")
@click.option("--data", type=JsonObject(), help="Keyword arguments of the handler, a JSON object.")
@when_options
@click.option("--priority", type=PRIORITY_CHOICE, help="Overrides the handler's priority.")
@click.option("--lane", help="Overrides the handler's lane.")
@click.option("--timeout", type=Duration(), help="Overrides the handler's timeout, e.g. 90s.")
@click.option("--max-retries", type=click.IntRange(0, 1000), help="Overrides the retry budget.")
@click.option("--metadata", type=JsonObject(), help="Extra metadata, a JSON object.")
@json_option
def schedule(
    app_path: str,
    handler_id: str,
    data: dict[str, Any] | None,
    at: datetime | None,
    delay: float | None,
    priority: str | None,
    lane: str | None,
    timeout: float | None,
    max_retries: int | None,
    metadata: dict[str, Any] | None,
    as_json: bool,
) -> None:
    """Schedule one job of HANDLER_ID and print its id.

    \b
    Example:
      jobmaster schedule --app shop.jobs:jm shop.jobs.send_mail --data '{"to": "a@b.c"}'
    """
    check_when(at, delay, required=False)
    job_id = run_opened(
        import_app(app_path),
        lambda app: app.schedule(
            handler_id,
            data,
            at=at,
            delay=delay,
            priority=priority,
            lane=lane,
            timeout=timeout,
            max_retries=max_retries,
            metadata=metadata,
        ),
        must_exist=False,
    )
    emit_value(as_json, "id", job_id)


# ---- jobs --------------------------------------------------------------------------------------


@click.group()
def jobs() -> None:
    """List, inspect, cancel, retry and reschedule jobs."""


def _filter_options(func: Callable[..., T]) -> Callable[..., T]:
    func = click.option("--lane", help="Only jobs of this lane.")(func)
    func = click.option("--handler", "handler_id", metavar="ID", help="Only jobs of this handler.")(func)
    return click.option(
        "--status",
        "statuses",
        multiple=True,
        type=STATUS_CHOICE,
        help="Only jobs in this status (repeatable).",
    )(func)


@jobs.command("list")
@cluster_options
@_filter_options
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option(
    "--after",
    metavar="CURSOR",
    help="Only jobs after this cursor: the next_cursor a previous page printed.",
)
@click.option(
    "--offset",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Skip this many jobs (deprecated: slow on deep pages; use --after).",
)
@json_option
def list_command(
    source: ClusterSource,
    statuses: tuple[str, ...],
    handler_id: str | None,
    lane: str | None,
    limit: int,
    after: str | None,
    offset: int,
    as_json: bool,
) -> None:
    """List jobs, latest due time first; a page ends with the cursor of the next.

    \b
    Example:
      jobmaster jobs list --app shop.jobs:jm --status Failed --limit 20
      jobmaster jobs list --app shop.jobs:jm --status Failed --limit 20 --after CURSOR
    """
    status = status_names(statuses) or None

    async def read(app: JobMaster) -> tuple[list[Job], str | None, int]:
        if offset:
            found = await app.list_jobs(
                status=status, handler=handler_id, lane=lane, limit=limit, offset=offset, after=after
            )
            following = encode_cursor(found[-1]) if len(found) == limit else None
        else:
            page = await app.list_jobs_page(
                status=status, handler=handler_id, lane=lane, limit=limit, after=after
            )
            found, following = page.jobs, page.next_cursor
        total = await app.count_jobs(status=status, handler=handler_id, lane=lane)
        return found, following, total

    found, following, total = run_opened(source.load(), read)
    if as_json:
        listing = {"total": total, "offset": offset, "limit": limit, "jobs": [job_dict(j) for j in found]}
        # Present while more jobs follow, so a script pages until the key is gone (null in jq).
        emit_json(listing if following is None else {**listing, "next_cursor": following})
        return
    if after is not None:
        title = f"{len(found)} job(s) after the cursor, of {total}"
    else:
        title = f"{f'{offset + 1}-{offset + len(found)}' if found else '0'} of {total} job(s)"
    table = Table(title=title, title_justify="left")
    table.add_column("id", no_wrap=True, min_width=32)
    table.add_column("handler", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("priority", no_wrap=True)
    table.add_column("lane", overflow="fold")
    table.add_column("due", no_wrap=True)
    table.add_column("tries", no_wrap=True, justify="right")
    table.add_column("finished", no_wrap=True)
    for job in found:
        table.add_row(
            job.id,
            job.definition_id,
            _styled_status(job),
            job.priority.name,
            job.lane,
            show_time(job.scheduled_at),
            f"{job.attempts}/{job.attempt_limit}",
            show_time(job.finished_at),
        )
    console.print(table)
    if following is not None:
        console.print(f"next page: --after {following}", soft_wrap=True, highlight=False)


@jobs.command()
@cluster_options
@_filter_options
@json_option
def count(
    source: ClusterSource,
    statuses: tuple[str, ...],
    handler_id: str | None,
    lane: str | None,
    as_json: bool,
) -> None:
    """Count jobs matching the filters.

    \b
    Example:
      jobmaster jobs count --app shop.jobs:jm --status Queued --status Processing
    """
    number = run_opened(
        source.load(),
        lambda app: app.count_jobs(status=status_names(statuses) or None, handler=handler_id, lane=lane),
    )
    emit_value(as_json, "count", number)


@jobs.command()
@cluster_options
@click.argument("job_id")
@json_option
def show(source: ClusterSource, job_id: str, as_json: bool) -> None:
    """Show every field of one job (its result as JSON), its last error and its attempt history.

    \b
    Example:
      jobmaster jobs show --app shop.jobs:jm 5f0c...
    """

    async def read(app: JobMaster) -> tuple[Job, list[Attempt]]:
        return await app.get_job(job_id), await app.job_attempts(job_id)

    job, attempts = run_opened(source.load(), read)
    if as_json:
        emit_json({**job_dict(job), "attempt_history": [attempt_dict(a) for a in attempts]})
        return
    _print_job(job, attempts)


def _print_job(job: Job, attempts: list[Attempt]) -> None:
    fields = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    fields.add_column(style="bold")
    fields.add_column(overflow="fold")
    for key, value in job_dict(job).items():
        if key == "last_error":
            continue
        if key == "status":
            fields.add_row(key, _styled_status(job))
        elif isinstance(value, dict) or (key == "result" and value is not None):
            # a result as JSON: the string "5" is not the number 5
            fields.add_row(key, json.dumps(value, sort_keys=True))
        else:
            fields.add_row(key, "-" if value is None else str(value))
    console.print(fields)
    if job.last_error:
        error = job.last_error
        body = Text(f"{error.get('type')}: {error.get('message')}", style="red")
        if error.get("traceback"):
            body.append("\n\n" + str(error["traceback"]).rstrip(), style="dim")
        console.print(Panel(body, title="last error", title_align="left", border_style="red"))
    if attempts:
        history = Table(title="attempts", title_justify="left")
        for name in ("#", "outcome", "started", "duration", "worker", "error"):
            history.add_column(name, overflow="fold")
        for attempt in attempts:
            err = attempt.error or {}
            history.add_row(
                str(attempt.attempt),
                attempt.outcome,
                show_time(attempt.started_at),
                f"{attempt.finished_at - attempt.started_at:.3f}s",
                attempt.worker_id or "-",
                f"{err.get('type')}: {err.get('message')}" if err else "",
            )
        console.print(history)


def _styled_status(job: Job) -> Text:
    style = {"Succeeded": "green", "Failed": "red", "Cancelled": "yellow"}.get(job.status.name, "")
    label = job.status.name + (" (cancel requested)" if job.cancel_requested else "")
    return Text(label, style=style)


def _report_due(job: Job, as_json: bool) -> None:
    """What `retry` and `reschedule` print: the job's status and when it is due now."""
    message = f"job {job.id} is {job.status.name}, due {show_time(job.scheduled_at)}"
    emit_or_say(as_json, job_dict(job), message)


@jobs.command()
@cluster_options
@click.argument("job_id")
@json_option
def cancel(source: ClusterSource, job_id: str, as_json: bool) -> None:
    """Cancel a job; a running one is asked to stop cooperatively.

    \b
    Example:
      jobmaster jobs cancel --app shop.jobs:jm 5f0c...
    """
    job = run_opened(source.load(), lambda app: app.cancel(job_id))
    if job.status.is_final:
        message = f"job {job_id} is {job.status.name}"
    else:
        message = f"job {job_id} is running: cancellation requested"
    emit_or_say(as_json, job_dict(job), message)


@jobs.command()
@cluster_options
@click.argument("job_id")
@json_option
def retry(source: ClusterSource, job_id: str, as_json: bool) -> None:
    """Run a Failed or Cancelled job again, with a fresh retry budget.

    \b
    Example:
      jobmaster jobs retry --app shop.jobs:jm 5f0c...
    """
    job = run_opened(source.load(), lambda app: app.retry(job_id))
    _report_due(job, as_json)


@jobs.command()
@cluster_options
@click.argument("job_id")
@when_options
@json_option
def reschedule(
    source: ClusterSource, job_id: str, at: datetime | None, delay: float | None, as_json: bool
) -> None:
    """Move a job that has not started yet to a new due time.

    \b
    Example:
      jobmaster jobs reschedule --app shop.jobs:jm 5f0c... --delay 1h
    """
    check_when(at, delay, required=True)
    job = run_opened(source.load(), lambda app: app.reschedule(job_id, at=at, delay=delay))
    _report_due(job, as_json)
