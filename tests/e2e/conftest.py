"""Fixtures for the multi-process tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import Processes
from private_pg import PrivatePostgres


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
