"""Packs on the real NATS server: new jobs of one push share a message, which leaves with its last
member; its ledger tells every process which members are settled."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from helpers import NATS_URL
from jobmaster.agents.base import AgentMessage
from jobmaster.agents.nats import PACK_IDS, NatsAgent, token
from jobmaster.backends import make_agent

Opener = Callable[[], Awaitable[NatsAgent]]


@pytest.fixture
async def processes(cluster_id: str) -> AsyncIterator[Opener]:
    """Transports of one cluster, as separate processes would hold them; the stream goes at the end."""
    opened: list[NatsAgent] = []

    async def open_one() -> NatsAgent:
        agent = make_agent(NATS_URL, cluster_id, "agent-1")
        assert isinstance(agent, NatsAgent)
        await agent.open()
        await agent.migrate()
        opened.append(agent)
        return agent

    yield open_one
    for agent in opened:
        await agent.close()
    last = await open_one()
    await last.drop()
    await last.close()


def _new(count: int, due: float, body: bytes = b"{}") -> list[AgentMessage]:
    return [AgentMessage(uuid.uuid4().hex, due, 0, body) for _ in range(count)]


async def _stored(agent: NatsAgent) -> int:
    """Messages in the agent's stream, bucket markers included."""
    info = await agent._js.api(agent._client(), f"STREAM.INFO.{agent.stream}")
    return int(info["state"]["messages"])


async def test_a_push_of_new_jobs_is_one_message_that_leaves_with_its_last_member(processes: Opener) -> None:
    agent = await processes()
    await agent.create_bucket("b")
    now = time.time()
    sent = _new(300, now - 1)
    await agent.push("b", sent)
    assert await _stored(agent) == 2  # the marker and one pack
    first = await agent.read_due("b", 100, now, now, now + 60)
    await agent.ack("b", [m.job_id for m in first])
    assert await _stored(agent) == 3  # and the pack's ledger
    assert await agent.count("b") == 200
    rest = await agent.read_due("b", 1000, now, now, now + 60)
    assert {m.job_id for m in rest} == {m.job_id for m in sent} - {m.job_id for m in first}
    await agent.ack("b", [m.job_id for m in rest])
    assert await _stored(agent) == 1
    assert await agent.count("b") == 0
    assert await agent.destroy_bucket("b")


async def test_another_process_reads_only_what_the_ledger_leaves(processes: Opener) -> None:
    """A reader that dies mid-pack: the next one gets the members it read but did not acknowledge,
    and none it did."""
    dying, survivor = await processes(), await processes()
    await dying.create_bucket("b")
    now = time.time()
    sent = _new(300, now - 1)
    await dying.push("b", sent)
    read = await dying.read_due("b", 150, now, now, now + 60)
    acked = {m.job_id for m in read[:100]}
    await dying.ack("b", list(acked))
    await dying.close()
    left = await survivor.read_due("b", 1000, now, now, now + 60)
    assert sorted(m.job_id for m in left) == sorted({m.job_id for m in sent} - acked)
    assert {m.payload for m in left} == {b"{}"}
    assert await survivor.count("b") == 200


async def test_two_processes_settling_one_pack_merge_their_ledgers(processes: Opener) -> None:
    a, b = await processes(), await processes()
    await a.create_bucket("b")
    now = time.time()
    sent = _new(400, now - 1)
    await a.push("b", sent)
    seen_a = await a.read_due("b", 1000, now, now, now + 60)
    seen_b = await b.read_due("b", 1000, now, now, now + 60)
    assert len(seen_a) == len(seen_b) == 400
    ids = [m.job_id for m in sent]
    for round_ in range(4):  # each acknowledges its own quarter of every hundred, at the same time
        await asyncio.gather(
            a.ack("b", ids[round_ * 100 : round_ * 100 + 50]),
            b.ack("b", ids[round_ * 100 + 50 : round_ * 100 + 100]),
        )
        assert await a.count("b") == 300 - round_ * 100
    assert await _stored(a) == 1
    assert await a.destroy_bucket("b")


async def test_claims_move_members_to_their_own_subject_once(processes: Opener) -> None:
    """Of two processes claiming a member, one wins; the other sees the winner's copy afterwards."""
    a, b = await processes(), await processes()
    await a.create_bucket("b")
    now = time.time()
    sent = _new(50, now - 1)
    await a.push("b", sent)
    got_a, got_b = await asyncio.gather(
        a.claim("b", 50, now, now, now + 60), b.claim("b", 50, now, now, now + 60)
    )
    assert len(got_a) + len(got_b) == 50
    assert {m.job_id for m in got_a}.isdisjoint(m.job_id for m in got_b)
    assert await a.count("b") == 50
    assert await b.claim("b", 50, now, now + 1, now + 60) == []
    assert len(await b.claim("b", 50, now, now + 61, now + 120)) == 50
    await b.ack("b", [m.job_id for m in sent])
    assert await a.count("b") == 0
    assert await _stored(a) == 1  # the pack went with its last member, claimed away


async def test_a_push_too_large_for_one_message_goes_as_several_packs(processes: Opener) -> None:
    agent = await processes()
    await agent.create_bucket("b")
    now = time.time()
    big = agent._client().max_payload // 4
    sent = [AgentMessage(uuid.uuid4().hex, now - 1 + i, 0, bytes([65 + i]) * big) for i in range(10)]
    await agent.push("b", sent)
    assert 4 <= await _stored(agent) <= 7  # the marker, then 3 or so members a pack
    got = await agent.read_due("b", 100, now + 20, now, now + 60)
    assert [(m.job_id, m.payload) for m in got] == [(m.job_id, m.payload) for m in sent]
    assert await agent.count("b") == 10


async def test_long_job_ids_split_packs_below_the_servers_header_limit(processes: Opener) -> None:
    """The ids travel in one header, which nats-server caps at 64 KiB."""
    agent = await processes()
    await agent.create_bucket("b")
    now = time.time()
    sent = [AgentMessage(f"{uuid.uuid4().hex}-{'x' * 60}", now - 1, 0, b"{}") for _ in range(2500)]
    await agent.push("b", sent)
    assert await agent.count("b") == 2500
    got = await agent.read_due("b", 5000, now, now, now + 60)
    assert sorted(m.job_id for m in got) == sorted(m.job_id for m in sent)


async def test_a_packed_job_is_found_until_it_is_settled(processes: Opener) -> None:
    agent, other = await processes(), await processes()
    await agent.create_bucket("b")
    now = time.time()
    sent = [AgentMessage(uuid.uuid4().hex, now + i, 0, f'{{"n": {i}}}'.encode()) for i in range(5)]
    await agent.push("b", sent)
    found = await other.find(sent[3].job_id)
    assert found == sent[3]
    read = await agent.read_due("b", 2, now + 10, now + 10, now + 60)
    await agent.ack("b", [m.job_id for m in read])
    assert await other.find(sent[0].job_id) is None
    assert await other.find(sent[4].job_id) == sent[4]


async def test_odd_packs_are_set_aside_never_stuck(processes: Opener) -> None:
    """A pack nobody can read names its jobs, which come out as poison; one naming none and a
    ledger whose pack is gone are removed, so the bucket can still be emptied and destroyed."""
    agent = await processes()
    await agent.create_bucket("b")
    nc = agent._client()
    prefix = f"{agent.root}.{token('b')}"
    await nc.publish(f"{prefix}.odd.p", b"\x00\x01 not a pack", headers={PACK_IDS: "j1,j2"})
    await nc.publish(f"{prefix}.nameless.p", b"\x00\x01")
    await nc.publish(f"{prefix}.empty.p", b"")
    await nc.publish(f"{prefix}.gone.s", b"", headers={"Jm-Settled": "0-3"})
    await nc.flush()
    now = time.time()
    claimed = await agent.claim("b", 10, now, now, now + 60)
    assert sorted(m.job_id for m in claimed) == ["j1", "j2"]
    assert all(m.payload == b"\x00\x01 not a pack" for m in claimed)
    assert await agent.count("b") == 2
    await agent.ack("b", ["j1", "j2"])
    assert await agent.count("b") == 0
    assert await _stored(agent) == 1
    assert await agent.destroy_bucket("b")
