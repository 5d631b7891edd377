"""`jobmaster schedules ...`: list, show and operate the recurring schedules of a cluster.

Everything a schedule needs is in the master, so these work with `--master/--cluster` as well as
with `--app`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from jobmaster.cli.common import (
    ClusterSource,
    cluster_options,
    console,
    emit_json,
    emit_or_say,
    emit_value,
    json_option,
    run_opened,
)
from jobmaster.schedules.operations import ScheduleInfo

_STATE_STYLE = {"active": "green", "paused": "yellow", "retired": "dim"}
_OUTCOME_STYLE = {"Succeeded": "green", "Failed": "red", "Cancelled": "yellow"}


@click.group()
def schedules() -> None:
    """List, show, pause, resume, trigger and remove recurring schedules."""


def _on_one(func: Callable[..., None]) -> click.Command:
    """A `schedules` command on the schedule NAME: the cluster options, NAME and --json."""
    return schedules.command()(cluster_options(click.argument("name")(json_option(func))))


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%SZ")


def _styled(value: str | None, styles: dict[str, str]) -> Text:
    return Text("-" if value is None else value, style=styles.get(value or "", ""))


@schedules.command("list")
@cluster_options
@json_option
def list_command(source: ClusterSource, as_json: bool) -> None:
    """List every schedule with its next and last run, last outcome, skipped and missed counts.

    \b
    Example:
      jobmaster schedules list --app shop.jobs:jm
    """
    found = run_opened(source.load(), lambda app: app.schedules.list())
    if as_json:
        emit_json({"schedules": [s.to_dict() for s in found]})
        return
    table = Table(title=f"{len(found)} schedule(s)", title_justify="left")
    for name in ("name", "state", "source", "when", "next run", "last run", "last outcome"):
        table.add_column(name, overflow="fold")
    table.add_column("skipped", justify="right")
    table.add_column("missed", justify="right")
    for s in found:
        table.add_row(
            s.name,
            _styled(s.state, _STATE_STYLE),
            s.source,
            s.explain,
            _when(s.next_run),
            _when(s.last_run),
            _styled(s.last_outcome, _OUTCOME_STYLE),
            str(s.skipped),
            str(s.missed),
        )
    console.print(table)


def _print(info: ScheduleInfo) -> None:
    fields = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    fields.add_column(style="bold")
    fields.add_column(overflow="fold")
    for key, value in info.to_dict().items():
        shown: Any = json.dumps(value, sort_keys=True) if isinstance(value, dict) else value
        fields.add_row(key, "-" if shown is None else str(shown))
    console.print(fields)


@_on_one
def show(source: ClusterSource, name: str, as_json: bool) -> None:
    """Show every field of one schedule.

    \b
    Example:
      jobmaster schedules show --app shop.jobs:jm daily-report
    """
    info = run_opened(source.load(), lambda app: app.schedules.get(name))
    if as_json:
        emit_json(info.to_dict())
    else:
        _print(info)


@_on_one
def pause(source: ClusterSource, name: str, as_json: bool) -> None:
    """Stop inserting the schedule's occurrences (jobs already inserted still run).

    \b
    Example:
      jobmaster schedules pause --app shop.jobs:jm daily-report
    """
    info = run_opened(source.load(), lambda app: app.schedules.pause(name))
    emit_or_say(as_json, info.to_dict(), f"schedule {name} paused")


@_on_one
def resume(source: ClusterSource, name: str, as_json: bool) -> None:
    """Run a paused schedule again from its next occurrence (what came due while paused is not run).

    \b
    Example:
      jobmaster schedules resume --app shop.jobs:jm daily-report
    """
    info = run_opened(source.load(), lambda app: app.schedules.resume(name))
    emit_or_say(as_json, info.to_dict(), f"schedule {name} resumed, next run {_when(info.next_run)}")


@_on_one
def trigger(source: ClusterSource, name: str, as_json: bool) -> None:
    """Insert a job of the schedule now (its own key: the scheduled occurrences still run).

    \b
    Example:
      jobmaster schedules trigger --app shop.jobs:jm daily-report
    """
    job_id = run_opened(source.load(), lambda app: app.schedules.trigger(name))
    emit_value(as_json, "id", job_id)


@_on_one
def remove(source: ClusterSource, name: str, as_json: bool) -> None:
    """Delete a schedule (its jobs stay). One still declared in code comes back when a process
    declaring it starts: pause it instead, or remove it from the code.

    \b
    Example:
      jobmaster schedules remove --app shop.jobs:jm nightly-export
    """
    run_opened(source.load(), lambda app: app.schedules.remove(name))
    emit_or_say(as_json, {"removed": name}, f"schedule {name} removed")
