"""Connection settings for the examples, from the environment (never hard-coded credentials)."""

from __future__ import annotations

import os

MASTER = os.environ.get("EXAMPLES_MASTER", "postgresql://localhost/jobmaster")
AGENT = os.environ.get("EXAMPLES_AGENT", "postgresql://localhost/jobmaster_transport")
NATS = os.environ.get("EXAMPLES_NATS", "nats://localhost:4222")


def cluster(default: str) -> str:
    """The guide's cluster id, unless EXAMPLES_CLUSTER names another (tests isolate runs with it)."""
    return os.environ.get("EXAMPLES_CLUSTER", default)


def master_or_sqlite() -> str:
    """EXAMPLES_MASTER when set, else an SQLite file in the current directory: the web examples run
    with no server at all."""
    return os.environ.get("EXAMPLES_MASTER", "sqlite:///examples-web.db")
