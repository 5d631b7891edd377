"""`jobmaster status`: what the master knows about the cluster right now."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any

import click
from rich.table import Table

from jobmaster.app import JobMaster
from jobmaster.cli.common import (
    ClusterSource,
    cluster_options,
    console,
    emit_json,
    iso,
    json_option,
    run_opened,
    show_time,
)
from jobmaster.cluster.model import WorkerRecord, WorkerStatus
from jobmaster.config.urls import redact
from jobmaster.jobs.model import OWNED_STATUSES, JobStatus, Priority
from jobmaster.master.base import StatusCount

#: Jobs read to attribute in-flight work to buckets. The master has no per-bucket count, and the
#: in-flight set is bounded by the buckets' buffers in practice, so one page is normally all of it.
OWNED_SCAN_LIMIT = 10_000


async def collect(app: JobMaster, include_stopped: bool) -> dict[str, Any]:
    inspect = app.inspect
    workers = await inspect.workers(include_stopped=True)
    buckets = await inspect.buckets()
    counts = await app.counts()
    owned = await app.list_jobs(status=list(OWNED_STATUSES), limit=OWNED_SCAN_LIMIT)
    now = time.time()
    in_agent = await inspect.agent_counts(buckets)
    load: dict[str, Counter[str]] = defaultdict(Counter)
    for job in owned:
        if job.bucket_id is not None:
            key = "running" if job.status is JobStatus.Processing else "queued"
            load[job.bucket_id][key] += 1
    names = {w.id: w.name for w in workers}
    timeout = app.config.worker_timeout
    return {
        "cluster_id": app.config.cluster_id,
        "master": redact(app.config.master),
        "time": iso(now),
        "workers": [
            _worker(w, now, timeout)
            for w in workers
            if include_stopped or w.status is not WorkerStatus.Stopped
        ],
        "buckets": [
            {
                "id": b.id,
                "worker_id": b.worker_id,
                "worker": names.get(b.worker_id),
                "priority": b.priority.name,
                "lane": b.lane,
                "agent": b.agent,
                "status": b.status.name,
                "queued": load[b.id]["queued"],
                "running": load[b.id]["running"],
                "agent_messages": in_agent[b.id],
            }
            for b in buckets
        ],
        "in_flight_scan_truncated": len(owned) == OWNED_SCAN_LIMIT,
        "counts": count_rows(counts),
    }


def count_rows(counts: list[StatusCount]) -> list[dict[str, Any]]:
    return [
        {"status": c.status.name, "priority": c.priority.name, "lane": c.lane, "count": c.count}
        for c in sorted(counts, key=lambda c: (c.status, c.priority, c.lane))
    ]


def _worker(worker: WorkerRecord, now: float, timeout: float) -> dict[str, Any]:
    age = now - worker.heartbeat_at
    return {
        "name": worker.name,
        "id": worker.id,
        "mode": worker.mode.value,
        "lane": worker.lane,
        "agent": worker.agent,
        "status": worker.status.name,
        "alive": worker.status is not WorkerStatus.Stopped and age < timeout,
        "heartbeat_age_s": round(age, 1),
        "host": worker.host,
        "pid": worker.pid,
        "started_at": iso(worker.started_at),
    }


@click.command()
@cluster_options
@click.option("--all", "include_stopped", is_flag=True, help="Include workers that have stopped.")
@json_option
def status(source: ClusterSource, include_stopped: bool, as_json: bool) -> None:
    """Show workers, their buckets and load, and job counts by status, priority and lane.

    \b
    Example:
      jobmaster status --master sqlite:///jobs.db --cluster shop
    """
    report = run_opened(source.load(), lambda app: collect(app, include_stopped))
    if as_json:
        emit_json(report)
        return
    console.print(
        f"cluster [bold]{report['cluster_id']}[/] on {report['master']} at {show_time(time.time())}"
    )
    console.print(_workers_table(report["workers"]))
    console.print(_buckets_table(report["buckets"]))
    if report["in_flight_scan_truncated"]:
        console.print(f"[yellow]queued/running counts cover the first {OWNED_SCAN_LIMIT} jobs[/]")
    console.print(counts_table(report["counts"]))
    lanes = {row["lane"] for row in report["counts"]}
    if len(lanes) > 1:
        console.print(_lanes_table(report["counts"]))


def _workers_table(workers: list[dict[str, Any]]) -> Table:
    table = Table(title=f"workers ({len(workers)})", title_justify="left")
    for name in ("name", "id", "mode", "lane", "agent", "status", "heartbeat", "host/pid"):
        table.add_column(name, no_wrap=name == "id")
    for w in workers:
        state = w["status"] if w["alive"] or w["status"] == "Stopped" else "Dead"
        style = "green" if w["alive"] else "red" if w["status"] != "Stopped" else "dim"
        table.add_row(
            w["name"],
            w["id"],
            w["mode"],
            w["lane"],
            w["agent"],
            f"[{style}]{state}[/]",
            f"{w['heartbeat_age_s']:.1f}s ago",
            f"{w['host']}/{w['pid']}",
        )
    return table


def _buckets_table(buckets: list[dict[str, Any]]) -> Table:
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for b in buckets:
        groups[(b["worker"] or b["worker_id"], b["priority"], b["lane"], b["agent"])].append(b)
    table = Table(title=f"buckets ({len(buckets)})", title_justify="left")
    for name in ("worker", "priority", "lane", "agent", "buckets", "status", "queued", "running", "in agent"):
        table.add_column(name, justify="right" if name in ("queued", "running", "in agent") else "left")
    order = {p.name: p.value for p in Priority}
    for (worker, priority, lane, agent), group in sorted(
        groups.items(), key=lambda item: (item[0][0], -order[item[0][1]], item[0][2])
    ):
        statuses = Counter(b["status"] for b in group)
        waiting = [b["agent_messages"] for b in group]
        table.add_row(
            worker,
            priority,
            lane,
            agent,
            str(len(group)),
            ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())),
            str(sum(b["queued"] for b in group)),
            str(sum(b["running"] for b in group)),
            "?" if None in waiting else str(sum(n for n in waiting if n is not None)),
        )
    return table


def counts_table(counts: list[dict[str, Any]]) -> Table:
    matrix: dict[str, Counter[str]] = defaultdict(Counter)
    for entry in counts:
        matrix[entry["status"]][entry["priority"]] += entry["count"]
    priorities = [p.name for p in sorted(Priority, reverse=True)]
    table = Table(title="jobs by status and priority", title_justify="left")
    table.add_column("status")
    for name in [*priorities, "total"]:
        table.add_column(name, justify="right")
    totals: Counter[str] = Counter()
    for job_status in JobStatus:
        row = matrix.get(job_status.name)
        if not row:
            continue
        totals.update(row)
        table.add_row(job_status.name, *(str(row[p]) for p in priorities), str(sum(row.values())))
    table.add_row("[bold]total[/]", *(str(totals[p]) for p in priorities), f"[bold]{sum(totals.values())}[/]")
    return table


def _lanes_table(counts: list[dict[str, Any]]) -> Table:
    matrix: dict[str, Counter[str]] = defaultdict(Counter)
    for row in counts:
        matrix[row["lane"]][row["status"]] += row["count"]
    present = [s.name for s in JobStatus if any(m[s.name] for m in matrix.values())]
    table = Table(title="jobs by lane", title_justify="left")
    table.add_column("lane")
    for name in [*present, "total"]:
        table.add_column(name, justify="right")
    for lane in sorted(matrix):
        row = matrix[lane]
        table.add_row(lane, *(str(row[s]) for s in present), str(sum(row.values())))
    return table
