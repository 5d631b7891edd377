"""Fixtures for the multi-process tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import NATS_AGENT, Processes
from private_pg import PrivatePostgres

from helpers import NATS_URL, drop_agent


@pytest.fixture
def processes(pg_urls: dict[str, str], cluster_id: str, tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(pg_urls["master"], cluster_id, tmp_path)
    yield procs
    procs.stop_all()


@pytest.fixture
def private_master() -> Iterator[PrivatePostgres]:
    """A running private PostgreSQL server of the test's own, to stop and start at will."""
    server = PrivatePostgres()
    server.start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def shared_nats(cluster_id: str) -> Iterator[str]:
    """The shared server's URL; the test's stream (of agent NATS_AGENT) is deleted afterwards.

    Ask for this fixture before `processes`, so that the workers are stopped before the stream goes.
    """
    yield NATS_URL
    asyncio.run(drop_agent(NATS_URL, cluster_id, NATS_AGENT))
