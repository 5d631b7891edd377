"""The agent conformance suite: every agent transport must pass all of it, unchanged."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from jobmaster.agents.base import AgentMessage, AgentTransport, BucketGoneError
from jobmaster.backends import make_agent


def _bucket() -> str:
    return f"bucket-{uuid.uuid4().hex[:10]}"


def _msg(due: float, version: int = 0, job_id: str | None = None, body: bytes = b"{}") -> AgentMessage:
    return AgentMessage(job_id or uuid.uuid4().hex, due, version, body)


async def test_claim_orders_by_due_and_respects_limits(agent: AgentTransport) -> None:
    bucket = _bucket()
    await agent.create_bucket(bucket)
    now = time.time()
    late, first, second = _msg(now + 100), _msg(now - 2), _msg(now - 1)
    await agent.push(bucket, [late, second, first])
    got = await agent.claim(bucket, 10, now + 10, now, now + 30)
    assert [m.job_id for m in got] == [first.job_id, second.job_id]
    assert got[0].payload == b"{}" and got[0].version == 0
    assert await agent.claim(bucket, 10, now + 10, now, now + 30) == []
    assert await agent.count(bucket) == 3


async def test_read_due_gives_the_owner_due_visible_messages_until_acknowledged(
    agent: AgentTransport,
) -> None:
    bucket = _bucket()
    await agent.create_bucket(bucket)
    now = time.time()
    hidden, first, second, late = _msg(now - 3), _msg(now - 2), _msg(now - 1), _msg(now + 100)
    await agent.push(bucket, [late, second, hidden, first])
    assert [m.job_id for m in await agent.claim(bucket, 1, now + 10, now, now + 30)] == [hidden.job_id]
    got = await agent.read_due(bucket, 1, now + 10, now, now + 30)
    assert [(m.job_id, m.payload) for m in got] == [(first.job_id, b"{}")]
    await agent.ack(bucket, [first.job_id])
    again = [m.job_id for m in await agent.read_due(bucket, 10, now + 10, now, now + 30)]
    assert again == [second.job_id]
    if type(agent).read_due is not AgentTransport.read_due:
        # a plain read hides nothing: the owner would see `second` again until it acknowledges it
        assert [m.job_id for m in await agent.read_due(bucket, 10, now + 10, now, now + 30)] == again
    assert await agent.count(bucket) == 3


async def test_read_due_from_a_cursor_goes_on_past_it_without_skipping_ties(agent: AgentTransport) -> None:
    """Jobs of one scheduling call share their due time, so a cursor on the due time alone would
    skip the rest of a tie a limited read cut through."""
    bucket = _bucket()
    await agent.create_bucket(bucket)
    now = time.time()
    tied, later = [_msg(now - 2) for _ in range(5)], _msg(now - 1)
    await agent.push(bucket, [later, *tied])
    first = await agent.read_due(bucket, 2, now, now, now + 30)
    assert len(first) == 2 and {m.job_id for m in first} < {m.job_id for m in tied}
    await agent.ack(bucket, [m.job_id for m in first])
    rest = await agent.read_due(bucket, 10, now, now, now + 30, after=max(m.read_key for m in first))
    assert {m.job_id for m in rest[:3]} == {m.job_id for m in tied} - {m.job_id for m in first}
    assert [m.job_id for m in rest[3:]] == [later.job_id]


async def test_claims_in_rounds_skip_hidden_messages_and_see_them_again(agent: AgentTransport) -> None:
    """Limited claims walk the due order past claimed (hidden) messages, which return when visible."""
    bucket = _bucket()
    await agent.create_bucket(bucket)
    now = time.time()
    messages = [_msg(now - 10 + i) for i in range(6)]
    await agent.push(bucket, list(reversed(messages)))
    ids = [m.job_id for m in messages]
    rounds = [await agent.claim(bucket, 2, now, now, now + 5) for _ in range(3)]
    assert [[m.job_id for m in r] for r in rounds] == [ids[0:2], ids[2:4], ids[4:6]]
    assert await agent.claim(bucket, 10, now, now + 1, now + 6) == []
    await agent.ack(bucket, [ids[1], ids[4]])
    again = await agent.claim(bucket, 3, now + 10, now + 10, now + 20)
    assert [m.job_id for m in again] == [ids[0], ids[2], ids[3]]
    [last] = await agent.claim(bucket, 3, now + 10, now + 10, now + 20)
    assert last.job_id == ids[5]


async def test_claimed_messages_come_back_when_not_acked(agent: AgentTransport) -> None:
    bucket = _bucket()
    await agent.create_bucket(bucket)
    now = time.time()
    message = _msg(now - 1)
    await agent.push(bucket, [message])
    [claimed] = await agent.claim(bucket, 10, now, now, now + 5)
    assert await agent.claim(bucket, 10, now, now + 1, now + 6) == []
    [again] = await agent.claim(bucket, 10, now + 10, now + 10, now + 20)
    assert again.job_id == claimed.job_id
    await agent.ack(bucket, [again.job_id])
    assert await agent.count(bucket) == 0
    assert await agent.claim(bucket, 10, now + 100, now + 100, now + 200) == []


async def test_push_replaces_a_known_job(agent: AgentTransport) -> None:
    bucket = _bucket()
    await agent.create_bucket(bucket)
    now = time.time()
    first = _msg(now - 1)
    await agent.push(bucket, [first])
    await agent.claim(bucket, 10, now, now, now + 60)
    await agent.push(bucket, [_msg(now - 1, version=3, job_id=first.job_id, body=b'{"v":3}')])
    [got] = await agent.claim(bucket, 10, now, now, now + 60)
    assert (got.version, got.payload) == (3, b'{"v":3}')
    assert await agent.count(bucket) == 1


async def test_a_retried_push_of_new_jobs_stores_each_once(agent: AgentTransport) -> None:
    """A publisher retrying a push whose outcome it did not learn names a job the bucket holds."""
    bucket = _bucket()
    await agent.create_bucket(bucket)
    now = time.time()
    first, second = _msg(now - 2), _msg(now - 1)
    await agent.push(bucket, [first])
    await agent.push(bucket, [_msg(now - 2, job_id=first.job_id), second])
    assert await agent.count(bucket) == 2
    got = await agent.claim(bucket, 10, now, now, now + 60)
    assert [(m.job_id, m.version) for m in got] == [(first.job_id, 0), (second.job_id, 0)]


async def test_claim_unsaved_takes_version_zero_only(agent: AgentTransport) -> None:
    bucket = _bucket()
    await agent.create_bucket(bucket)
    now = time.time()
    unsaved, saved, soon = _msg(now + 300), _msg(now + 300, version=2), _msg(now + 5)
    await agent.push(bucket, [unsaved, saved, soon])
    got = await agent.claim_unsaved(bucket, 10, now + 15, now, now + 30)
    assert [m.job_id for m in got] == [unsaved.job_id]
    assert await agent.claim_unsaved(bucket, 10, now + 15, now, now + 30) == []
    [later] = await agent.claim_unsaved(bucket, 10, now, now, now + 30)
    assert later.job_id == soon.job_id


async def test_next_due_counts_claimed_messages_from_when_they_are_visible_again(
    agent: AgentTransport,
) -> None:
    bucket = _bucket()
    await agent.create_bucket(bucket)
    now = time.time()
    messages = [_msg(now - 5 + i) for i in range(4)]
    await agent.push(bucket, messages)
    assert len(await agent.claim(bucket, 2, now, now, now + 30)) == 2
    due = await agent.next_due_at(bucket, now)
    assert due is not None and abs(due - messages[2].due_at) < 1e-3
    assert len(await agent.claim(bucket, 2, now, now, now + 20)) == 2
    due = await agent.next_due_at(bucket, now)
    assert due is not None and abs(due - (now + 20)) < 1e-3


async def test_next_due_find_and_destroy(agent: AgentTransport) -> None:
    bucket, other = _bucket(), _bucket()
    await agent.create_bucket(bucket)
    await agent.create_bucket(other)
    now = time.time()
    assert await agent.next_due_at(bucket, now) is None
    a, b = _msg(now + 50), _msg(now + 20)
    await agent.push(bucket, [a, b])
    await agent.push(other, [_msg(now + 1)])
    due = await agent.next_due_at(bucket, now)
    assert due is not None and abs(due - b.due_at) < 1e-3
    found = await agent.find(a.job_id)
    assert found is not None and found.job_id == a.job_id
    assert await agent.find(uuid.uuid4().hex) is None
    assert await agent.count(other) == 1


async def test_destroy_refuses_a_bucket_with_messages(agent: AgentTransport) -> None:
    bucket = _bucket()
    await agent.create_bucket(bucket)
    now = time.time()
    message = _msg(now + 5)
    await agent.push(bucket, [message])
    assert not await agent.destroy_bucket(bucket)
    assert await agent.count(bucket) == 1
    await agent.ack(bucket, [message.job_id])
    assert await agent.destroy_bucket(bucket)
    with pytest.raises(BucketGoneError):
        await agent.push(bucket, [_msg(now)])
    assert await agent.find(message.job_id) is None


async def test_a_push_racing_a_destroy_never_strands_messages(agent: AgentTransport) -> None:
    """A push that succeeds left its messages in a bucket that still exists; one that fails (the
    caller then routes its jobs elsewhere) left none behind, whoever won."""
    now = time.time()
    for _ in range(20):
        bucket = _bucket()
        await agent.create_bucket(bucket)
        messages = [_msg(now + 5) for _ in range(20)]
        pushed, destroyed = await asyncio.gather(
            agent.push(bucket, messages), agent.destroy_bucket(bucket), return_exceptions=True
        )
        assert isinstance(destroyed, bool)
        if pushed is None:
            assert destroyed is False
            assert await agent.count(bucket) == len(messages)
        else:
            assert isinstance(pushed, BucketGoneError)
            assert [await agent.find(m.job_id) for m in messages] == [None] * len(messages)


async def test_concurrent_claims_never_share_a_message(
    agent: AgentTransport, agent_url: str, cluster_id: str
) -> None:
    bucket = _bucket()
    await agent.create_bucket(bucket)
    now = time.time()
    await agent.push(bucket, [_msg(now - 1) for _ in range(300)])
    other = make_agent(agent_url, cluster_id, "agent-1")
    await other.open()
    try:

        async def take(transport: AgentTransport) -> list[str]:
            got: list[str] = []
            while True:
                batch = await transport.claim(bucket, 20, time.time(), time.time(), time.time() + 60)
                if not batch:
                    return got
                got += [m.job_id for m in batch]

        a, b = await asyncio.gather(take(agent), take(other))
    finally:
        await other.close()
    assert len(a) + len(b) == 300 and set(a).isdisjoint(b)
