"""`jobmaster config show`: the effective configuration, and where each value came from."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from jobmaster.app import JobMaster
from jobmaster.cli.common import ClusterSource, cluster_options, console, emit_json, json_option
from jobmaster.config.loading import DEFAULT
from jobmaster.config.urls import redact


def _shown(name: str, value: Any) -> Any:
    """A value as it may be printed: URLs without their passwords."""
    if name == "master" and isinstance(value, str):
        return redact(value)
    if name == "agents":
        return [{**agent, "url": redact(agent["url"])} for agent in value]
    return value


def effective(app: JobMaster) -> list[dict[str, Any]]:
    """Every setting of the app's cluster with its value and source, in declaration order."""
    values = app.config.model_dump(mode="json")
    return [
        {"name": name, "value": _shown(name, value), "source": app.config_sources.get(name, DEFAULT)}
        for name, value in values.items()
    ]


@click.group()
def config() -> None:
    """Inspect the configuration."""


@config.command()
@cluster_options
@json_option
def show(source: ClusterSource, as_json: bool) -> None:
    """Print the effective configuration and where each value came from: default, file,
    environment (the variable) or keyword. Passwords in URLs are shown as ***.

    \b
    Example:
      jobmaster config show --app shop.jobs:jm
      jobmaster config show --config cluster.toml --json
    """
    settings = effective(source.load())
    if as_json:
        emit_json({"settings": settings})
        return
    table = Table(title="effective configuration", title_justify="left")
    for column in ("setting", "value", "source"):
        table.add_column(column)
    for row in settings:
        table.add_row(row["name"], str(row["value"]), row["source"])
    console.print(table)
