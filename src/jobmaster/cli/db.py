"""`jobmaster db`: schema migrations as an explicit deployment step.

Opening a cluster migrates too, but operators usually want the schema in place (and its version
known) before rolling out workers, without starting any of them.
"""

from __future__ import annotations

import click

from jobmaster.app import JobMaster
from jobmaster.backends import make_agent, make_master
from jobmaster.cli.common import (
    ClusterSource,
    check_exists,
    cluster_options,
    console,
    emit_json,
    emit_or_say,
    json_option,
    run_coroutine,
)
from jobmaster.config.settings import STANDALONE_AGENT
from jobmaster.config.urls import redact


@click.group()
def db() -> None:
    """Create or upgrade the master schema and show its version."""


async def _upgrade(app: JobMaster) -> tuple[int, list[str]]:
    cluster = app.config
    master = make_master(cluster.master, cluster.cluster_id)
    await master.open()
    try:
        version = await master.migrate()
    finally:
        await master.close()
    migrated = []
    for name, url in cluster.agent_urls().items():
        if name == STANDALONE_AGENT:
            continue
        agent = make_agent(url, cluster.cluster_id, name)
        await agent.open()
        try:
            await agent.migrate()
        finally:
            await agent.close()
        migrated.append(name)
    return version, migrated


@db.command()
@cluster_options
@json_option
def upgrade(source: ClusterSource, as_json: bool) -> None:
    """Apply pending migrations to the master (and every configured agent).

    \b
    Example:
      jobmaster db upgrade --master sqlite:///jobs.db --cluster shop
    """
    app = source.load()
    version, agents = run_coroutine(_upgrade(app))
    if as_json:
        emit_json({"master": redact(app.config.master), "schema_version": version, "agents": agents})
        return
    console.print(f"master {redact(app.config.master)} is at schema version {version}")
    for name in agents:
        console.print(f"agent {name} is migrated")


async def _version(app: JobMaster) -> int:
    """Read without migrating: the point is to learn whether an upgrade is due."""
    check_exists(app.config.master)
    master = make_master(app.config.master, app.config.cluster_id)
    await master.open()
    try:
        return await master.schema_version()
    finally:
        await master.close()


@db.command()
@cluster_options
@json_option
def version(source: ClusterSource, as_json: bool) -> None:
    """Show the master's schema version.

    \b
    Example:
      jobmaster db version --master sqlite:///jobs.db --cluster shop
    """
    app = source.load()
    number = run_coroutine(_version(app))
    master = redact(app.config.master)
    message = f"master {master} is at schema version {number}"
    emit_or_say(as_json, {"master": master, "schema_version": number}, message)
