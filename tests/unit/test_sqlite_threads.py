"""The SQLite client runs every statement on one thread; no cursor may escape to the event loop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from jobmaster.agents.base import AgentMessage
from jobmaster.backends import make_agent


async def test_concurrent_pushes_to_one_sqlite_agent(tmp_path: Path) -> None:
    """Pushes to three buckets at once, as a publisher's `schedule_many` makes them. A push's cursor
    finalised on the event loop thread reset the cached insert statement while the database thread
    ran it for the next push: "bad parameter or other API misuse", within these 60 rounds in every
    one of six runs before the fix."""
    agent = make_agent(f"sqlite:///{tmp_path}/agent.db", "threads", "agent-1")
    await agent.open()
    try:
        await agent.migrate()
        buckets = ["b0", "b1", "b2"]
        for bucket in buckets:
            await agent.create_bucket(bucket)
        now = time.time()
        for round_ in range(60):
            await asyncio.gather(
                *(
                    agent.push(b, [AgentMessage(f"{round_}-{b}-{i}", now, 0, b"{}") for i in range(333)])
                    for b in buckets
                )
            )
        assert [await agent.count(b) for b in buckets] == [60 * 333] * 3
    finally:
        await agent.close()
