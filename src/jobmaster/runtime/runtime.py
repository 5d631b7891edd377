"""Everything one process shares: store connections, wake-ups, the bucket view, write batchers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from jobmaster.agents.base import AgentTransport, BucketQueue
from jobmaster.agents.master_queue import MasterQueue
from jobmaster.backends import latest_schema_version, make_agent, make_master
from jobmaster.config.settings import ClusterConfig
from jobmaster.config.urls import describe, redact
from jobmaster.errors import ConfigError, UnavailableError
from jobmaster.events import BatchFlushed, EventBus
from jobmaster.jobs.model import Completion
from jobmaster.logs.outages import MASTER, Outages, agent_service
from jobmaster.logs.runs import RunLog
from jobmaster.master.base import Fence, MasterStore, QueueHost
from jobmaster.master.sql.migrations import refuse_newer
from jobmaster.runtime.batcher import Batcher
from jobmaster.runtime.duties import Duty
from jobmaster.runtime.duties.builtin import builtin_duties
from jobmaster.runtime.executor import BucketExecutor, Intake, ReadAdoptAck, TakeFromJobTable
from jobmaster.runtime.hub import HELD, Hub
from jobmaster.runtime.poison import Poison, keep_undecodable
from jobmaster.runtime.services import AppServices
from jobmaster.runtime.startup import StartWait
from jobmaster.runtime.view import ClusterView
from jobmaster.runtime.worker import Worker

log = logging.getLogger("jobmaster.runtime")

#: Sync handlers run here. The pool reuses idle threads, and its bound is high so that a handler
#: abandoned after a timeout (a thread cannot be killed) never blocks the slots of the others.
MAX_THREADS = 1024
BUCKET_CACHE_TTL = 1.0

StartRequest = tuple[Fence, float, float]


async def reach(what: str, url: str, opening: Callable[[], Awaitable[None]]) -> None:
    """Open a connection; a server that cannot be reached is a `UnavailableError` naming it and its
    URL (without the password), not a bare `ConnectionRefusedError` from deep inside a driver."""
    try:
        await opening()
    except UnavailableError:
        raise
    except (OSError, TimeoutError) as exc:
        raise UnavailableError(f"cannot connect to {redact(url)}: {describe(exc)} ({what})") from exc


class Runtime:
    def __init__(self, services: AppServices) -> None:
        self.services = services
        self.cluster: ClusterConfig = services.config
        self.master: MasterStore = make_master(self.cluster.master, self.cluster.cluster_id)
        #: Each agent's queue, and how a bucket's owner takes jobs from it (chosen once, here).
        self.agents: dict[str, BucketQueue] = {}
        self._intakes: dict[str, Callable[[], Intake]] = {}
        for name, url in self.cluster.agent_urls().items():
            self.agents[name], self._intakes[name] = self._make_agent(name, url)
        self.hub = Hub()
        self.view = ClusterView(self.master, BUCKET_CACHE_TTL, self.cluster.worker_timeout)
        self.hub.on_buckets_changed(self.view.invalidate)
        self.threads = ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="jobmaster-handler")
        self.events: EventBus = services.events
        self.starts: Batcher[StartRequest, bool] = Batcher(
            "starts", self._flush_starts, on_flush=self._flushed
        )
        self.completions: Batcher[Completion, bool] = Batcher(
            "completions", self._flush_completions, on_flush=self._flushed
        )
        self.workers: list[Worker] = []
        self.outages = Outages()
        self._run_log: Callable[[], None] | None = None
        self.duties: list[Duty] = [*builtin_duties(), *services.duties]

    def _make_agent(self, name: str, url: str) -> tuple[BucketQueue, Callable[[], Intake]]:
        """An agent on the master's own database is the job table itself where the master can be;
        its buckets' owners take jobs from it, where they read and acknowledge an agent's messages."""
        if url == self.cluster.master and isinstance(self.master, QueueHost):
            queue = MasterQueue(self.master, name)
            return queue, partial(TakeFromJobTable, queue)
        agent = make_agent(url, self.cluster.cluster_id, name)
        return agent, partial(ReadAdoptAck, agent)

    def intake(self, agent: str) -> Intake:
        """A new intake for one bucket of `agent` (it may keep a read position of its own)."""
        return self._intakes[agent]()

    def intakes(self) -> dict[str, Intake]:
        """One intake per agent, for draining buckets back into the master."""
        return {name: make() for name, make in self._intakes.items()}

    async def open(self, waiting: StartWait) -> None:
        """Connect to the master and every agent and prepare their schemas.

        Each step goes through `waiting`: a publisher's fails at once when a server cannot be
        reached (a web request must not hang), a worker's waits for it up to its start timeout, as
        a worker started before its database does.
        """
        master = self.cluster.master
        await waiting.step(MASTER, master, partial(reach, MASTER, master, self.master.open))
        try:
            await waiting.step(MASTER, master, self._prepare_master_schema)
        except Exception:
            await self.master.close()
            raise
        for name, agent in self.agents.items():
            service, url = self.service(name)
            await waiting.step(service, url, partial(reach, service, url, agent.open))
            if self.cluster.migrate == "auto":
                await waiting.step(service, url, agent.migrate)
        await self.master.listen(self.hub.master_topic)
        for agent in self.agents.values():
            await agent.listen(self.hub.wake_bucket)
        # Last, so that an open that fails leaves no subscription behind to log every line twice
        # after the next one.
        self._run_log = RunLog().attach(self.events)

    def service(self, agent: str | None = None) -> tuple[str, str]:
        """The master's (or `agent`'s) name in start-up and outage lines, and its URL."""
        if agent is None:
            return MASTER, self.cluster.master
        return agent_service(agent), self.cluster.agent_urls()[agent]

    async def _prepare_master_schema(self) -> None:
        """The `migrate` setting: with `check`, publishers need no DDL rights and a schema left
        behind by a forgotten `jobmaster db upgrade` stops start-up with the command to run. A
        schema newer than this code stops it in both (`migrate` itself refuses it)."""
        if self.cluster.migrate == "auto":
            await self.master.migrate()
        elif self.cluster.migrate == "check":
            current = await self.master.schema_version()
            latest = latest_schema_version(self.cluster.master)
            refuse_newer(current, latest)
            if current < latest:
                found = "no jobmaster schema" if current == 0 else f"jobmaster schema version {current}"
                raise ConfigError(
                    f"the master database has {found}, this jobmaster needs version {latest}, and "
                    "migrate='check' runs no DDL: apply it with `jobmaster db upgrade` (--master and "
                    "--cluster, or --app), or set migrate='auto'"
                )

    async def close(self) -> None:
        if self._run_log is not None:
            self._run_log()
            self._run_log = None
        await self.completions.close()
        await self.starts.close()
        for agent in self.agents.values():
            await agent.close()
        await self.master.close()
        self.threads.shutdown(wait=False, cancel_futures=True)

    # ---- shared services ---------------------------------------------------------------------

    def _flushed(self, batcher: str, size: int, seconds: float) -> None:
        if self.events.wants(BatchFlushed):
            self.events.emit(BatchFlushed(batcher, size, seconds))

    def local_executors(self) -> dict[str, BucketExecutor]:
        return {bid: ex for w in self.workers for bid, ex in w.executors.items()}

    def agent_of_bucket(self, bucket_id: str) -> BucketQueue | None:
        bucket = self.view.bucket(bucket_id)
        return None if bucket is None else self.agents.get(bucket.agent)

    async def wake_coordinators(self) -> None:
        """After a HeldOnMaster write: wake this process's coordinator and everyone else's."""
        self.hub.coordinator.set()
        await self.master.notify(HELD)

    async def set_aside(self, agent: AgentTransport, bucket_id: str, poison: Sequence[Poison]) -> None:
        """Keep messages no worker can decode in the master, then remove them from the agent.

        Never redelivered forever, never simply deleted: the ack waits for the master's commit, and
        while the master is unreachable this raises and the messages stay for a later read.
        """
        await keep_undecodable(self.master, agent.name, bucket_id, poison)
        await agent.ack(bucket_id, [message.job_id for message, _ in poison])

    async def _flush_starts(self, items: list[StartRequest]) -> list[bool]:
        """Start a batch; a job named twice goes to a second write, never into the same one.

        Two executors can hold copies of one job (a lease lapsed while the first was paused and the
        job was dispatched again). The master starts at most the copy whose version holds, but it
        answers with job ids: with both copies in one write, both would read as started and run.
        """
        results = [False] * len(items)
        pending = list(range(len(items)))
        while pending:
            batch: dict[str, int] = {}
            rest: list[int] = []
            for index in pending:
                job_id = items[index][0].job_id
                if job_id in batch:
                    rest.append(index)
                else:
                    batch[job_id] = index
            chosen = [items[i] for i in batch.values()]
            now = max(item[1] for item in chosen)
            lease = max(item[2] for item in chosen)
            started = set(await self.master.start([item[0] for item in chosen], now, lease))
            for job_id, index in batch.items():
                results[index] = job_id in started
            pending = rest
        return results

    async def _flush_completions(self, items: list[Completion]) -> list[bool]:
        """Outcomes must reach the master: retry with back-off until the write goes through."""
        delay = 0.1
        while True:
            try:
                done = set(await self.master.complete(items))
                break
            except Exception as exc:
                self.outages.failed(MASTER, exc, f"recording {len(items)} job outcomes")
                await asyncio.sleep(delay)
                delay = min(5.0, delay * 2)
        self.outages.ok(MASTER)
        if any(c.scheduled_at is not None for c in items):
            self.hub.coordinator.set()
        return [c.job_id in done for c in items]

    # ---- workers -----------------------------------------------------------------------------

    async def run_workers(self, waiting: StartWait) -> None:
        """Run every configured worker until `stop_workers()`; returns when all have left.

        Each worker registers itself and its buckets through `waiting`, the start-up's own wait.
        """
        self.workers = [Worker(self, config) for config in self.cluster.workers]
        started = time.time()
        async with asyncio.TaskGroup() as group:
            for worker in self.workers:
                group.create_task(worker.run(waiting), name=f"worker:{worker.config.name}")
            log.info("started %d worker(s) in %.2fs", len(self.workers), time.time() - started)

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
