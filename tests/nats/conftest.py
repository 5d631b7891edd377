"""A private nats-server with JetStream per test: its own free port and store, killable at will."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from nats_support import PrivateNats


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[PrivateNats]:
    server = PrivateNats(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
