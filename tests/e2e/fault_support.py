"""What the fault tests (test_faults.py) share: their processes, a network cut, and the check that
every handler run is an attempt the master counted.

Imported by name, so kept out of conftest.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from e2e_support import HERE, Processes

from helpers import wait_until
from jobmaster import JobMaster, JobStatus
from jobmaster.jobs.model import Attempt

#: Attempt outcomes of a run its worker did not finish: recovery's (`lost`) and the worker's own
#: (`interrupted`, when it gave the job back itself).
CUT_SHORT = frozenset({"lost", "interrupted"})


class FaultProcesses(Processes):
    """`Processes` of `fault_app`, with variables of their own (`extra_env`) for the next ones started."""

    app_script = HERE / "fault_app.py"

    def __init__(self, master: str, cluster: str, logs: Path) -> None:
        super().__init__(master, cluster, logs)
        self.extra_env: dict[str, str] = {}

    def env(self, workers: list[dict[str, Any]], agents: dict[str, str] | None = None) -> dict[str, str]:
        return {**super().env(workers, agents), **self.extra_env}


async def fetch(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def create_interrupts_table(url: str) -> None:
    """Where `fault_app.stalls` notes each victim run that was interrupted."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS e2e_interrupts (job_id text, attempt int, worker_id text, at float8)"
        )
    finally:
        await conn.close()


async def worker_id(url: str, cluster: str, name: str) -> str:
    """The id of the cluster's worker `name` (one process started it), once it registered."""

    async def registered() -> list[asyncpg.Record]:
        query = "SELECT id FROM jm_workers WHERE cluster_id = $1 AND name = $2"
        return await fetch(url, query, cluster, name)

    rows = await wait_until(registered, f"worker {name} to register")
    assert len(rows) == 1, rows
    return str(rows[0]["id"])


async def held_by(url: str, worker: str) -> Counter[JobStatus]:
    """The jobs `worker` owns in the master, by status."""
    rows = await fetch(url, "SELECT status, count(*) FROM jm_jobs WHERE worker_id = $1 GROUP BY 1", worker)
    return Counter({JobStatus(r[0]): r[1] for r in rows})


def log_lines(processes: Processes, name: str, text: str) -> list[str]:
    """The lines of worker process `name`'s log that contain `text`."""
    log = (processes.logs / f"{name}.log").read_text(errors="replace")
    return [line for line in log.splitlines() if text in line]


@dataclass
class Accounting:
    """Every handler run and every counted attempt of a set of jobs, checked against each other."""

    #: Handler-recorded runs per job: (attempt, worker id).
    runs: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    #: `job_attempts()` per job.
    attempts: dict[str, list[Attempt]] = field(default_factory=dict)

    def outcomes(self) -> Counter[str]:
        return Counter(a.outcome for rows in self.attempts.values() for a in rows)

    def runs_on(self, prefix: str) -> list[tuple[str, int]]:
        """(job id, attempt) of every recorded run on a worker whose id starts with `prefix`."""
        return [(j, a) for j, rs in self.runs.items() for a, w in rs if w.startswith(prefix)]


async def account(
    url: str,
    cluster: str,
    ids: Collection[str],
    faulty: str | None = None,
    final: JobStatus = JobStatus.Succeeded,
    runs: str | None = None,
) -> Accounting:
    """Cross-check each job's handler-recorded runs (`e2e_runs`) with its `attempts` and
    `job_attempts()`, as a user reads them; fails on the first job that breaks a rule.

    Per job: it ended `final`; its attempts are numbered 1..`attempts`; every recorded run is one of
    them, on the worker the master names, and no attempt ran twice; an attempt with no recorded run
    is one cut short before its handler began; a run cut short (`CUT_SHORT`) was on a worker whose
    id starts with `faulty`, the one the test harmed (None: no run may be cut short); and only the
    last attempt may have succeeded. `runs` is the database of `e2e_runs` if it is not the master's.
    """
    result = Accounting()
    for row in await fetch(
        runs or url,
        "SELECT job_id, attempt, worker_id FROM e2e_runs WHERE job_id = ANY($1::text[])",
        list(ids),
    ):
        result.runs.setdefault(row["job_id"], []).append((row["attempt"], row["worker_id"]))
    app = JobMaster(cluster, url)
    async with app:
        for job_id in ids:
            job = await app.get_job(job_id)
            attempts = await app.job_attempts(job_id)
            result.attempts[job_id] = attempts
            _check_job(job_id, job.status, job.attempts, attempts, result.runs.get(job_id, []), faulty, final)
    return result


def _check_job(
    job_id: str,
    status: JobStatus,
    count: int,
    attempts: list[Attempt],
    runs: list[tuple[int, str]],
    faulty: str | None,
    final: JobStatus,
) -> None:
    where = f"job {job_id}: runs {runs}, attempts {[(a.attempt, a.worker_id, a.outcome) for a in attempts]}"
    assert status is final, f"{where}: ended {status.name}, not {final.name}"
    assert [a.attempt for a in attempts] == list(range(1, count + 1)), f"{where}: `attempts` is {count}"
    by_number = {a.attempt: a for a in attempts}
    ran = Counter(attempt for attempt, _ in runs)
    assert max(ran.values(), default=1) == 1, f"{where}: an attempt ran twice"
    for attempt, worker in runs:
        assert attempt in by_number, f"{where}: run of attempt {attempt} not counted"
        assert by_number[attempt].worker_id == worker, f"{where}: attempt {attempt} counted elsewhere"
    for a in attempts:
        if a.outcome in CUT_SHORT or a.attempt not in ran:
            assert a.outcome in CUT_SHORT, f"{where}: attempt {a.attempt} never ran but is {a.outcome}"
            harmed = faulty is not None and (a.worker_id or "").startswith(faulty)
            assert harmed, f"{where}: a run was cut short on a worker the test did not harm"
    if final is JobStatus.Succeeded:
        assert attempts and attempts[-1].outcome == "succeeded", f"{where}: the last attempt did not succeed"
        assert all(a.outcome != "succeeded" for a in attempts[:-1]), f"{where}: succeeded twice"


class PausableProxy:
    """A TCP relay to a server that a test can cut: while paused no byte passes either way, as in a
    network partition (no reset, no refusal: calls simply hang); resumed, what was held goes
    through, as after the partition heals. Paused with `answers_only`, requests still reach the
    server and only its answers are held: writes sent meanwhile commit, and are answered late."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.target = (host, port)
        self.port = 0
        self._requests = asyncio.Event()
        self._answers = asyncio.Event()
        self.resume()
        self._server: asyncio.Server | None = None
        self._relays: set[asyncio.Task[None]] = set()
        self._trigger: tuple[Callable[[bytes], bool], asyncio.Event] | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    def pause(self, answers_only: bool = False) -> None:
        self._answers.clear()
        if not answers_only:
            self._requests.clear()

    def resume(self) -> None:
        self._requests.set()
        self._answers.set()

    def hold_answers_after(self, request: Callable[[bytes], bool]) -> asyncio.Event:
        """From the first request for which `request(its bytes)` is true, hold every answer, its own
        too: it reaches the server and commits, but is answered only once resumed. The event is set
        when that request passed."""
        passed = asyncio.Event()
        self._trigger = (request, passed)
        return passed

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for relay in self._relays:
            relay.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        relay = asyncio.current_task()
        assert relay is not None
        self._relays.add(relay)
        try:
            await self._requests.wait()
            server_reader, server_writer = await asyncio.open_connection(*self.target)
            await asyncio.gather(
                self._pipe(client_reader, server_writer, self._requests, self._watch),
                self._pipe(server_reader, client_writer, self._answers),
            )
        except OSError:
            pass
        finally:
            client_writer.close()
            self._relays.discard(relay)

    def _watch(self, request: bytes) -> None:
        if self._trigger is not None and self._trigger[0](request):
            self._answers.clear()
            self._trigger[1].set()
            self._trigger = None

    @staticmethod
    async def _pipe(
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        flowing: asyncio.Event,
        watch: Callable[[bytes], None] | None = None,
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await source.read(65536):
                await flowing.wait()
                if watch is not None:
                    watch(data)
                sink.write(data)
                await sink.drain()
        sink.close()
