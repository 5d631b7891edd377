"""`jobmaster agents`: operations on agent connections.

`drain` sends every job held by the buckets of dead or stopped workers back to the master, where
coordinators hand them to live buckets. It is the step that moves a standalone cluster to distributed
agents (docs/topology.md) and the manual form of what drain workers do continuously.
"""

from __future__ import annotations

import click

from jobmaster.cli.common import (
    ClusterSource,
    cluster_options,
    console,
    emit_json,
    json_option,
    run_opened,
)


@click.group()
def agents() -> None:
    """Operate on agent connections (drain the buckets of dead workers)."""


@agents.command()
@cluster_options
@click.option("--agent", "agent", default=None, help="Only buckets on this agent connection.")
@json_option
def drain(source: ClusterSource, agent: str | None, as_json: bool) -> None:
    """Move the jobs of dead or stopped workers' buckets back to the master.

    \b
    Example:
      jobmaster agents drain --master postgresql://db/jobs --cluster shop --agent standalone
    """
    drained = run_opened(source.load(), lambda app: app.inspect.drain_orphans(agent))
    if as_json:
        emit_json({"buckets": drained, "jobs": sum(drained.values())})
        return
    for bucket_id, moved in drained.items():
        console.print(f"bucket {bucket_id}: {moved} job(s) back to the master")
    console.print(f"drained {len(drained)} bucket(s), {sum(drained.values())} job(s)")
