"""NATS agent under faults, on a private nats-server: crash and restart, outage at schedule time."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from nats_support import PrivateNats, free_port

from helpers import wait_until
from jobmaster import JobContext, JobMaster, JobStatus
from jobmaster.agents.base import AgentMessage, AgentTransport, BucketGoneError
from jobmaster.agents.nats import NatsAgent, NatsAgentError, NatsUnavailableError, parse_url, token
from jobmaster.backends import make_agent
from jobmaster.errors import ConfigError

#: Fast heartbeats and leases, as in the engine tests.
FAST = {
    "heartbeat_interval": 0.3,
    "job_lease": 2.0,
    "worker_timeout": 1.5,
    "idle_poll_interval": 0.02,
    "shutdown_grace": 5.0,
}


async def _until(check: Callable[[], Awaitable[object]], timeout: float = 15.0) -> None:
    """Retry `check` until it stops raising (a reconnect in progress) or the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await check()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.1)


@pytest.fixture
async def opened() -> AsyncIterator[Callable[[str, str], Awaitable[AgentTransport]]]:
    agents: list[AgentTransport] = []

    async def open_agent(url: str, cluster_id: str) -> AgentTransport:
        agent = make_agent(url, cluster_id, "agent-1")
        await agent.open()
        agents.append(agent)
        return agent

    yield open_agent
    for agent in agents:
        await agent.close()


async def test_messages_survive_a_sigkill_of_the_server(nats_server: PrivateNats, cluster_id, opened) -> None:
    agent = await opened(nats_server.url, cluster_id)
    await agent.migrate()
    bucket = "worker-1.Medium.0"
    await agent.create_bucket(bucket)
    now = time.time()
    sent = {
        m.job_id: m
        for m in (
            AgentMessage(uuid.uuid4().hex, now - 1 + i / 1000, i % 3, f'{{"n": {i}}}'.encode())
            for i in range(200)
        )
    }
    await agent.push(bucket, list(sent.values()))
    hidden = {m.job_id for m in await agent.claim(bucket, 50, now + 10, now, now + 600)}
    assert len(hidden) == 50

    nats_server.kill()
    nats_server.start()

    # The same transport reconnects by itself and reads on (its consumer died with the server).
    await _until(lambda: agent.count(bucket))
    assert await agent.count(bucket) == 200
    visible = await agent.claim(bucket, 1000, now + 10, now + 1, now + 30)
    assert {m.job_id for m in visible} == set(sent) - hidden
    # Claims survived too: the hidden ones come back only once their visibility time has passed.
    everything = await agent.claim(bucket, 1000, now + 10, now + 601, now + 700)
    assert {m.job_id for m in everything} == set(sent)
    assert all((m.version, m.payload) == (sent[m.job_id].version, sent[m.job_id].payload) for m in everything)

    # A fresh process sees the same, then the messages can be acknowledged and the bucket destroyed.
    other = await opened(nats_server.url, cluster_id)
    assert await other.count(bucket) == 200
    some = next(iter(sent))
    found = await other.find(some)
    assert found is not None and found.payload == sent[some].payload
    await agent.ack(bucket, list(sent))
    assert await other.count(bucket) == 0
    assert await other.destroy_bucket(bucket)


async def test_a_partly_settled_pack_survives_a_sigkill_of_the_server(
    nats_server: PrivateNats, cluster_id, opened
) -> None:
    """The pack and its ledger are stored like any message: after a crash of the server, a new
    reader gets exactly the members nobody acknowledged."""
    owner = await opened(nats_server.url, cluster_id)
    await owner.migrate()
    bucket = "worker-1.Medium.0"
    await owner.create_bucket(bucket)
    now = time.time()
    sent = [AgentMessage(uuid.uuid4().hex, now - 1, 0, f'{{"n": {i}}}'.encode()) for i in range(300)]
    await owner.push(bucket, sent)
    read = await owner.read_due(bucket, 120, now, now, now + 60)
    await owner.ack(bucket, [m.job_id for m in read])

    nats_server.kill()
    nats_server.start()

    successor = await opened(nats_server.url, cluster_id)
    assert await successor.count(bucket) == 180
    left = await successor.read_due(bucket, 1000, now, now, now + 60)
    assert {m.job_id: m.payload for m in left} == {
        m.job_id: m.payload for m in sent if m.job_id not in {r.job_id for r in read}
    }
    await successor.ack(bucket, [m.job_id for m in left])
    assert await successor.count(bucket) == 0
    assert await successor.destroy_bucket(bucket)


async def test_unreachable_nats_at_schedule_time_takes_the_no_path(
    nats_server: PrivateNats, pg_urls: dict[str, str], cluster_id: str
) -> None:
    app = JobMaster(
        cluster_id,
        pg_urls["master"],
        agents={"nats-1": nats_server.url},
        # No coordinator in this process: a HeldOnMaster job stays exactly where the publisher put it.
        workers=[{"name": "exec", "agent": "nats-1", "mode": "execution"}],
        **FAST,  # type: ignore[arg-type]
    )

    @app.handler(name="tests.nats.noop")
    async def noop(ctx: JobContext) -> None:
        return None

    task = asyncio.create_task(app.run(handle_signals=False))
    try:
        await app.wait_ready()
        # While the server is up, the YES path works: straight into the worker's bucket, then run.
        first = await app.schedule("tests.nats.noop")
        deadline = time.monotonic() + 10
        while (await app.get_job(first)).status is not JobStatus.Succeeded:
            assert time.monotonic() < deadline, "job scheduled through NATS did not run"
            await asyncio.sleep(0.05)

        nats_server.kill()
        agent = app.runtime.agents["nats-1"]
        bucket = next(iter(app.runtime.workers[0].executors))

        async def client_noticed() -> bool:
            """The client saw the closed socket: a call now fails at once instead of timing out."""
            try:
                await agent.count(bucket)
            except NatsUnavailableError:
                return True
            except Exception:  # a call that began before the client noticed
                return False
            return False

        await wait_until(client_noticed, "the NATS client noticed the server is gone", timeout=30)
        started = time.monotonic()
        job_id = await app.schedule("tests.nats.noop")
        assert time.monotonic() - started < 2.0
        job = await app.get_job(job_id)
        assert job.status is JobStatus.HeldOnMaster

        # Back up: the worker reconnects, and then stops gracefully (its buckets drain and go).
        nats_server.start()
        await _until(lambda: agent.count(bucket))
    finally:
        app.stop()
        await asyncio.wait_for(task, 30)


async def test_push_into_a_bucket_destroyed_elsewhere_raises(
    nats_server: PrivateNats, cluster_id, opened
) -> None:
    """A publisher with a stale view of a bucket that a drainer just destroyed leaves nothing behind."""
    publisher = await opened(nats_server.url, cluster_id)
    drainer = await opened(nats_server.url, cluster_id)
    await publisher.migrate()
    bucket = "worker-2.High.0"
    await publisher.create_bucket(bucket)
    now = time.time()
    await publisher.push(bucket, [AgentMessage("job-1", now, 0, b"{}")])  # the publisher knows it
    await drainer.ack(bucket, ["job-1"])
    assert await drainer.destroy_bucket(bucket)
    with pytest.raises(BucketGoneError):
        await publisher.push(bucket, [AgentMessage("job-2", now, 0, b"{}")])
    assert await drainer.count(bucket) == 0
    assert await drainer.find("job-2") is None


async def test_open_names_the_unreachable_url_without_its_password(cluster_id: str) -> None:
    url = f"nats://jobs:s3cret@127.0.0.1:{free_port()}"
    agent = make_agent(url, cluster_id, "agent-1")
    with pytest.raises(NatsUnavailableError) as caught:
        await agent.open()
    message = str(caught.value)
    assert "127.0.0.1" in message and "jobs:***@" in message and "s3cret" not in message


@pytest.mark.parametrize(
    ("flags", "credentials"),
    [(("--user", "jobs", "--pass", "p@ss:word"), "jobs:p%40ss%3Aword@"), (("--auth", "t0ken"), "t0ken@")],
)
async def test_credentials_in_the_url(tmp_path: Path, cluster_id: str, flags, credentials: str) -> None:
    server = PrivateNats(tmp_path, *flags)
    server.start()
    try:
        good = make_agent(f"nats://{credentials}127.0.0.1:{server.port}", cluster_id, "agent-1")
        await good.open()
        try:
            await good.migrate()
            await good.create_bucket("b")
            await good.push("b", [AgentMessage("j", time.time(), 0, b"{}")])
            assert await good.count("b") == 1
        finally:
            await good.close()
        # Several servers: the dead one is skipped.
        several = f"nats://{credentials}127.0.0.1:{free_port()},nats://127.0.0.1:{server.port}"
        pooled = make_agent(several, cluster_id, "agent-1")
        await pooled.open()
        try:
            assert await pooled.count("b") == 1
        finally:
            await pooled.close()
        # Refused credentials are no outage: start-up stops at them instead of waiting.
        for _ in range(5):  # the refusal may come before or after the connection's reset
            with pytest.raises(
                NatsAgentError, match=r"NATS at nats://\*\*\*@127.0.0.1:\d+ refused the credentials"
            ):
                await make_agent(f"nats://wrong@127.0.0.1:{server.port}", cluster_id, "agent-1").open()
    finally:
        server.stop()


def test_url_forms() -> None:
    one = parse_url("nats://127.0.0.1")
    assert one.servers == ["nats://127.0.0.1:4222"] and not one.tls
    pooled = parse_url("nats://u:p%2Fw@h1:4223, nats://h2?replicas=3")
    assert pooled.servers == ["nats://h1:4223", "nats://h2:4222"]
    assert (pooled.user, pooled.password, pooled.token, pooled.replicas) == ("u", "p/w", None, 3)
    assert pooled.safe_url == "nats://u:***@h1:4223,nats://h2?replicas=3"
    token = parse_url("nats://s3cret@[::1]:4222?tls_ca=/etc/ca.pem")
    assert token.token == "s3cret" and token.tls and token.servers == ["nats://[::1]:4222"]
    assert "s3cret" not in token.safe_url
    for bad in (
        "nats://",
        "nats://h:notaport",
        "tls://h:4222",
        "nats://h1,http://h2",
        "nats://h/db",
        "nats://h?tsl=true",
        "nats://h?tls=maybe",
        "nats://h?tls=false&tls_ca=/x",
        "nats://h?replicas=9",
        "nats://a:b@h1,nats://c:d@h2",
    ):
        with pytest.raises(ConfigError):
            parse_url(bad)
    assert isinstance(make_agent("nats://h", "c", "a"), NatsAgent)


async def test_odd_ids_and_odd_data(nats_server: PrivateNats, cluster_id: str, opened) -> None:
    """Ids with dots, spaces and non-ASCII letters round-trip; a foreign message never stops a claim."""
    agent = await opened(nats_server.url, cluster_id)
    await agent.migrate()
    assert isinstance(agent, NatsAgent)
    bucket, job = "wörker.Medium.0", "jöb 1/2.x_y"
    await agent.create_bucket(bucket)
    now = time.time()
    await agent.push(bucket, [AgentMessage(job, now - 1, 7, b"payload")])
    found = await agent.find(job)
    assert found is not None and (found.job_id, found.version, found.payload) == (job, 7, b"payload")
    # Someone publishes straight onto the bucket's subjects: no headers, or nonsense in them.
    nc = agent._client()
    await nc.publish(f"{agent.root}.{token(bucket)}.garbage", b"\xff\x00 not a job")
    await nc.publish(f"{agent.root}.{token(bucket)}.junk", b"x", headers={"Jm-Due": "soon", "Jm-Ver": "v"})
    await nc.flush()
    claimed = await agent.claim(bucket, 10, now, now, now + 30)
    assert [m.job_id for m in claimed] == ["garbage", "junk", job]
    assert claimed[0].payload == b"\xff\x00 not a job" and claimed[0].version == 0
    await agent.ack(bucket, [m.job_id for m in claimed])
    assert await agent.count(bucket) == 0
    assert await agent.destroy_bucket(bucket)


async def test_tls(tmp_path: Path, cluster_id: str) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    secure = PrivateNats(tmp_path / "tls", "--tls", "--tlscert", str(cert), "--tlskey", str(key))
    plain = PrivateNats(tmp_path / "plain")
    secure.start()
    plain.start()
    try:
        agent = make_agent(f"nats://127.0.0.1:{secure.port}?tls_ca={cert}", cluster_id, "agent-1")
        await agent.open()
        try:
            await agent.migrate()
            await agent.create_bucket("b")
            await agent.push("b", [AgentMessage("j", time.time(), 0, b"{}")])
            assert await agent.count("b") == 1
        finally:
            await agent.close()
        # Asking for TLS from a server that does not offer it is refused, never silently plain.
        with pytest.raises(ConfigError, match="TLS"):
            await make_agent(f"nats://127.0.0.1:{plain.port}?tls=true", cluster_id, "agent-1").open()
    finally:
        secure.stop()
        plain.stop()
