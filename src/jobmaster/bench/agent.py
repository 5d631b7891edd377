"""`jobmaster bench-agent`: an agent transport alone, without a master or handlers.

It answers one question the full benchmark cannot: how many jobs a second can the transport itself
carry on this machine? A job's trip through an agent is the publisher's push, the owner's read and
its acknowledgement; a distributed topology does all of that *and* the master's writes, so its
throughput can never exceed this figure. This process pushes, as a publisher does; a second
process (`python -m jobmaster.bench.agent CLUSTER_ID`, its settings in its environment) reads
and acknowledges, as a bucket's owner does, and reports when it read the last job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import sys
import time
import uuid
from typing import Any

import click

from jobmaster.agents.base import AgentMessage, AgentTransport
from jobmaster.backends import make_agent
from jobmaster.bench.cpu_meter import machine_busy_seconds, own_cpu_seconds, rounding_us_per_job
from jobmaster.cli.common import (
    CliError,
    emit_report,
    event_loop_name,
    helper_env,
    helper_settings,
    json_option,
    run_coroutine,
    stdin_closed,
)
from jobmaster.config.urls import redact
from jobmaster.jobs import codec
from jobmaster.jobs.model import Job, new_job_id
from jobmaster.runtime.executor import ReadPosition
from jobmaster.runtime.hub import wait_for

AGENT_NAME = "bench-agent"
READER_START_TIMEOUT = 60.0
READER_GRACE = 10.0
#: How long an idle reader waits for a wake-up before reading again (polled agents have none).
IDLE_WAIT = 0.01
LEASE_S = 60.0


def _messages(jobs: int) -> list[AgentMessage]:
    """Jobs as a publisher encodes them, due now, not yet held by the master (version 0)."""
    now = time.time()
    found = []
    for _ in range(jobs):
        job = Job(id=new_job_id(), definition_id="bench.agent", scheduled_at=now, created_at=now)
        found.append(AgentMessage(job.id, job.scheduled_at, 0, codec.job_to_bytes(job)))
    return found


# ---- the reading process -------------------------------------------------------------------------


async def _drain_bucket(
    agent: AgentTransport, bucket_id: str, expected: int, batch: int, wake: asyncio.Event, deadline: float
) -> float:
    """Read and acknowledge `expected` jobs the way a bucket's owner does; when the last was acked.

    The deadline ends a reader that would otherwise wait for ever for jobs that never come.
    """
    done, last_ack = 0, 0.0
    position = ReadPosition()
    while done < expected:
        now = time.time()
        if now > deadline:
            raise TimeoutError(f"bucket {bucket_id}: {done} of {expected} jobs read by the deadline")
        read = await agent.read_due(bucket_id, batch, now + 1.0, now, now + LEASE_S, position.start(now))
        position.advance(read, batch)
        if not read:
            await wait_for(wake, IDLE_WAIT)
            continue
        await agent.ack(bucket_id, [m.job_id for m in read])
        last_ack = time.time()
        done += len(read)
    return last_ack


async def _read(settings: dict[str, Any]) -> dict[str, Any]:
    agent = make_agent(settings["agent"], settings["cluster_id"], AGENT_NAME)
    await agent.open()
    try:
        wakes = {bucket_id: asyncio.Event() for bucket_id in settings["buckets"]}

        def woken(bucket_id: str) -> None:
            if bucket_id in wakes:
                wakes[bucket_id].set()

        await agent.listen(woken)
        print("ready", flush=True)
        cpu, deadline = own_cpu_seconds(), time.time() + settings["timeout"]
        reading = asyncio.gather(
            *(
                _drain_bucket(agent, b, n, settings["read_batch"], wakes[b], deadline)
                for b, n in settings["buckets"].items()
            )
        )
        parent_gone = asyncio.ensure_future(stdin_closed(asyncio.get_running_loop()).wait())
        either: list[asyncio.Future[Any]] = [reading, parent_gone]
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not reading.done():
            reading.cancel()
            raise RuntimeError("the pushing process is gone")
        parent_gone.cancel()
        return {"last_ack": max(reading.result()), "cpu_s": own_cpu_seconds() - cpu}
    finally:
        await agent.close()


def main() -> None:
    try:
        result = run_coroutine(_read(helper_settings()))
    except Exception as exc:
        sys.exit(f"bench-agent reader: {exc}")
    print(json.dumps(result), flush=True)


# ---- the pushing process -------------------------------------------------------------------------


async def _start_reader(settings: dict[str, Any]) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jobmaster.bench.agent",
        settings["cluster_id"],
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=helper_env(settings),
    )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), READER_START_TIMEOUT)
    except TimeoutError:
        process.kill()
        raise CliError(f"bench-agent reader did not start within {READER_START_TIMEOUT:.0f}s") from None
    if line.strip() != b"ready":
        await process.wait()
        raise CliError(f"bench-agent reader exited with code {process.returncode} (its error is above)")
    return process


async def _push_all(
    agent: AgentTransport, buckets: list[str], messages: list[AgentMessage], chunk: int
) -> None:
    """Chunks as `schedule_many` calls would make them; message `j` goes to bucket `j % len(buckets)`."""
    for offset in range(0, len(messages), chunk):
        part = messages[offset : offset + chunk]
        await asyncio.gather(
            *(agent.push(b, part[(i - offset) % len(buckets) :: len(buckets)]) for i, b in enumerate(buckets))
        )


async def _wait_reader(process: asyncio.subprocess.Process, timeout: float) -> dict[str, Any]:
    assert process.stdout is not None
    try:
        out = await asyncio.wait_for(process.stdout.read(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise CliError(f"bench-agent: the reader did not get every job within {timeout:.0f}s") from None
    if await process.wait() != 0:
        raise CliError(f"bench-agent reader failed with exit code {process.returncode} (its error is above)")
    result: dict[str, Any] = json.loads(out)
    return result


async def run_bench_agent(
    url: str, jobs: int, chunk: int, bucket_count: int, read_batch: int, timeout: float
) -> dict[str, Any]:
    cluster_id = f"bench-{uuid.uuid4().hex[:12]}"
    agent = make_agent(url, cluster_id, AGENT_NAME)
    await agent.open()
    try:
        try:
            measured = await _measure(agent, jobs, chunk, bucket_count, read_batch, timeout)
        except BaseException:
            with contextlib.suppress(Exception):  # the cluster is the benchmark's own: nothing to keep
                await agent.drop()
            raise
        await agent.drop()
    finally:
        await agent.close()
    return {"cluster_id": cluster_id, **measured}


async def _measure(
    agent: AgentTransport, jobs: int, chunk: int, bucket_count: int, read_batch: int, timeout: float
) -> dict[str, Any]:
    await agent.migrate()
    buckets = [f"{agent.cluster_id}.Medium.{i}" for i in range(bucket_count)]
    for bucket_id in buckets:
        await agent.create_bucket(bucket_id)
    messages = _messages(jobs)
    settings = {
        "agent": agent.url,
        "cluster_id": agent.cluster_id,
        "buckets": {b: len(range(i, jobs, bucket_count)) for i, b in enumerate(buckets)},
        "read_batch": read_batch,
        "timeout": timeout,
    }
    reader = await _start_reader(settings)
    try:
        cpu, busy, started = own_cpu_seconds(), machine_busy_seconds(), time.time()
        await _push_all(agent, buckets, messages, chunk)
        pushed, push_cpu = time.time() - started, own_cpu_seconds() - cpu
        # A little longer than the reader's own deadline, so that it can say what it missed.
        read = await _wait_reader(reader, timeout + READER_GRACE)
        busy = machine_busy_seconds() - busy
    finally:
        if reader.returncode is None:
            reader.kill()
            await reader.wait()
    left = [b for b in buckets if not await agent.destroy_bucket(b)]
    if left:
        raise CliError(f"bench-agent: bucket(s) {', '.join(left)} still hold messages after the run")
    per_job = 1e6 / jobs
    return {
        "pushed_per_s": round(jobs / pushed, 1),
        "transferred_per_s": round(jobs / max(read["last_ack"] - started, 1e-9), 1),
        "push_cpu_us_per_job": round(push_cpu * per_job, 1),
        "read_cpu_us_per_job": round(read["cpu_s"] * per_job, 1),
        "machine_cpu_us_per_job": round(busy * per_job, 1),
        "cpu_rounding_us_per_job": rounding_us_per_job(jobs),
        "cpu_bound_per_s": round((os.cpu_count() or 1) / max(busy / jobs, 1e-12), 1),
    }


@click.command("bench-agent")
@click.option("--agent", "url", metavar="URL", required=True, help="Agent URL (any agent backend).")
@click.option("--jobs", type=click.IntRange(1), default=50_000, show_default=True)
@click.option(
    "--chunk-size",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="Jobs per push round, spread over the buckets.",
)
@click.option("--buckets", type=click.IntRange(1, 100), default=2, show_default=True)
@click.option(
    "--read-batch",
    type=click.IntRange(1, 100_000),
    default=100,
    show_default=True,
    help="Jobs per read of a bucket (the bench's executor reads its free slots: 100).",
)
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Longest wait for the reader.")
@json_option
def bench_agent(
    url: str, jobs: int, chunk_size: int, buckets: int, read_batch: int, timeout: float, as_json: bool
) -> None:
    """Measure an agent transport alone: push, read and acknowledge, in two processes.

    A distributed topology on this agent can never complete jobs faster than `transferred_per_s`.
    `machine_cpu_us_per_job` is the CPU time of the whole machine per job (the agent's server
    too, when it runs here); `cpu_bound_per_s` is what the machine's cores could carry at that cost.

    \b
    Example:
      jobmaster bench-agent --agent nats://127.0.0.1:4222 --jobs 50000 --json
    """
    measured = run_coroutine(run_bench_agent(url, jobs, chunk_size, buckets, read_batch, timeout))
    report = {
        "agent": redact(url),
        "cluster_id": measured.pop("cluster_id"),
        "jobs": jobs,
        "chunk_size": chunk_size,
        "buckets": buckets,
        "read_batch": read_batch,
        **measured,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "event_loop": event_loop_name(),
    }
    emit_report(report, f"jobmaster bench-agent ({jobs} jobs)", as_json)


if __name__ == "__main__":
    main()
