"""Both ways the NATS agent uses nats-py: the private fast path (checked against the pinned nats-py)
and the public-API path any other nats-py version takes, each on a real server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats_support import PrivateNats

from helpers import NATS_URL
from jobmaster.agents.base import AgentMessage
from jobmaster.agents.nats import NatsAgent, wire
from jobmaster.backends import make_agent
from jobmaster.errors import ConfigError


@pytest.fixture(params=["private", "public"])
def client_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Forces the path; the private one only where the installed nats-py is the checked one."""
    private = request.param == "private"
    # The test command installs requirements/ci.txt, which pins a nats-py the private path was
    # checked against: both paths always run there.
    assert not private or wire.private_api_known(wire._installed_version()), (
        f"nats-py {wire._installed_version()} is not one the private path was checked against"
    )
    monkeypatch.setattr(wire, "PRIVATE_API", private)
    yield request.param


async def test_push_read_ack_round_trip(client_path: str, cluster_id: str) -> None:
    agent = make_agent(NATS_URL, cluster_id, "agent-1")
    assert isinstance(agent, NatsAgent)
    await agent.open()
    try:
        nc = agent._client()
        if client_path == "private":
            assert isinstance(nc, wire._FastHeaderClient)
        else:
            assert type(nc) is Client
        await agent.migrate()
        await agent.create_bucket("b")
        now = time.time()
        # Three new jobs travel as one pack, a known job (version 2) on its own subject.
        sent = [AgentMessage(uuid.uuid4().hex, now - 3 + i, 0, f"new {i}".encode()) for i in range(3)]
        sent.append(AgentMessage("known-job", now - 10, 2, b"known"))
        await agent.push("b", sent)
        assert await agent.count("b") == 4
        read = await agent.read_due("b", 10, now, now, now + 60)
        assert read == sorted(sent, key=lambda m: m.due_at)
        assert await agent.find("known-job") == sent[-1]
        await agent.ack("b", [m.job_id for m in read])
        assert await agent.count("b") == 0
        assert await agent.read_due("b", 10, now, now, now + 60) == []
        assert await agent.destroy_bucket("b")
    finally:
        await agent.drop()
        await agent.close()


async def test_a_plain_server_is_refused_when_tls_is_asked_for(
    client_path: str, tmp_path: Path, cluster_id: str
) -> None:
    plain = PrivateNats(tmp_path)
    plain.start()
    try:
        with pytest.raises(ConfigError, match="TLS was asked for"):
            await make_agent(f"{plain.url}?tls=true", cluster_id, "agent-1").open()
    finally:
        plain.stop()


async def test_a_server_without_jetstream_is_refused(
    client_path: str, tmp_path: Path, cluster_id: str
) -> None:
    server = PrivateNats(tmp_path, jetstream=False)
    server.start()
    try:
        with pytest.raises(ConfigError, match="has no JetStream"):
            await make_agent(server.url, cluster_id, "agent-1").open()
    finally:
        server.stop()
