"""The `jobmaster` command: one group, one module per command family."""

from __future__ import annotations

import os
from typing import Any

import click

from jobmaster.cli.agents import agents
from jobmaster.cli.common import EVENT_LOOP_ENV, EXIT_BAD_INPUT, EXIT_FAILURE, CliError
from jobmaster.cli.config import config
from jobmaster.cli.db import db
from jobmaster.cli.demo import demo
from jobmaster.cli.jobs import jobs, schedule
from jobmaster.cli.schedules import schedules
from jobmaster.cli.status import status
from jobmaster.cli.worker import worker
from jobmaster.config.urls import describe
from jobmaster.errors import (
    ConfigError,
    InvalidTransitionError,
    JobMasterError,
    JobNotFoundError,
    QueryError,
    ScheduleError,
    ScheduleNotFoundError,
)
from jobmaster.runtime.process import EVENT_LOOPS

#: Errors that mean the user asked for something wrong, as opposed to something going wrong.
BAD_INPUT = (
    ConfigError,
    ScheduleError,
    JobNotFoundError,
    ScheduleNotFoundError,
    InvalidTransitionError,
    QueryError,
)


def _leaf(exc: BaseException) -> BaseException:
    """Task groups wrap a single failure in a group; the user wants to see the failure itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


class JobMasterGroup(click.Group):
    """Turns engine errors into one red line and an exit code, wherever a command raises them."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as raised:
            exc = _leaf(raised)
            if isinstance(exc, click.ClickException):
                raise exc from None
            if isinstance(exc, BAD_INPUT):
                raise CliError(str(exc), EXIT_BAD_INPUT) from None
            if isinstance(exc, JobMasterError):
                raise CliError(str(exc)) from None
            if ctx.params.get("debug"):
                raise
            raise CliError(f"{describe(exc)} (run with --debug for the traceback)") from None


@click.group(cls=JobMasterGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show the traceback of unexpected errors.")
@click.option(
    "--event-loop",
    type=click.Choice(EVENT_LOOPS),
    default="auto",
    show_default=True,
    envvar=EVENT_LOOP_ENV,
    show_envvar=True,
    help="The asyncio event loop of this process and the ones it starts: auto is uvloop where installed.",
)
@click.version_option(package_name="jobmaster")
def cli(debug: bool, event_loop: str) -> None:
    """Run, inspect and benchmark JobMaster clusters."""
    # The environment carries the choice to `run` here and to the helper processes a command starts.
    os.environ[EVENT_LOOP_ENV] = event_loop


BENCH_EXTRA = "pip install 'jobmaster[bench]'"


def _needs_bench_extra(name: str) -> click.Command:
    """Stands in for a bench command when psutil is missing: any use of it says what to install."""

    def refuse(args: tuple[str, ...]) -> None:
        raise CliError(f"`jobmaster {name}` needs the 'bench' extra: {BENCH_EXTRA}", EXIT_FAILURE)

    return click.Command(
        name,
        callback=refuse,
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
        help=f"Benchmark command; needs the 'bench' extra: {BENCH_EXTRA}",
        context_settings={"ignore_unknown_options": True},
        add_help_option=False,
    )


def _bench_commands() -> list[click.Command]:
    """`bench` and `bench-agent`, or stand-ins naming the extra when psutil is not installed, and
    `bench-schedules` (no psutil). Imported here: the bench package imports the CLI's helpers."""
    from jobmaster.bench.schedules import bench_schedules

    try:
        from jobmaster.bench.agent import bench_agent
        from jobmaster.bench.engine import bench
    except ModuleNotFoundError as exc:
        if exc.name != "psutil":
            raise
        return [_needs_bench_extra("bench"), _needs_bench_extra("bench-agent"), bench_schedules]
    return [bench, bench_agent, bench_schedules]


cli.add_command(agents)
for command in _bench_commands():
    cli.add_command(command)
cli.add_command(config)
cli.add_command(db)
cli.add_command(demo)
cli.add_command(jobs)
cli.add_command(schedule)
cli.add_command(schedules)
cli.add_command(status)
cli.add_command(worker)


def main() -> None:
    cli(prog_name="jobmaster")


if __name__ == "__main__":
    main()
