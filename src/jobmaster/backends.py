"""Discovery of master and agent backends, by URL scheme.

The table below names, for each scheme, the module that serves it and the pip extra that installs
its driver. Nothing is imported until a URL of that scheme is opened: validating a configuration
(which checks schemes) costs no driver import, and a SQLite user needs none of asyncpg, asyncmy or
nats-py installed. A backend module declares `SCHEMES` and a `STORE` (master) or `TRANSPORT`
(agent) class; `tests/unit/test_backends.py` checks that the table and the modules agree, so
adding a backend means adding its module and one line here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from jobmaster.agents.base import AgentTransport
from jobmaster.errors import ConfigError
from jobmaster.master.base import MasterStore


@dataclass(frozen=True, slots=True)
class Backend:
    #: The module that serves the scheme, imported on first use.
    module: str
    #: The extra that installs its driver (`pip install 'jobmaster[extra]'`); None: no driver needed.
    extra: str | None = None


_SQLITE_MASTER = Backend("jobmaster.master.sqlite")
_POSTGRES_MASTER = Backend("jobmaster.master.postgres", "postgres")
_MYSQL_MASTER = Backend("jobmaster.master.mysql", "mysql")

MASTERS: dict[str, Backend] = {
    "sqlite": _SQLITE_MASTER,
    "postgresql": _POSTGRES_MASTER,
    "postgres": _POSTGRES_MASTER,
    "mysql": _MYSQL_MASTER,
    "mariadb": _MYSQL_MASTER,
}

_SQLITE_AGENT = Backend("jobmaster.agents.sqlite")
_POSTGRES_AGENT = Backend("jobmaster.agents.postgres", "postgres")
_MYSQL_AGENT = Backend("jobmaster.agents.mysql", "mysql")

AGENTS: dict[str, Backend] = {
    "sqlite": _SQLITE_AGENT,
    "postgresql": _POSTGRES_AGENT,
    "postgres": _POSTGRES_AGENT,
    "mysql": _MYSQL_AGENT,
    "mariadb": _MYSQL_AGENT,
    "nats": Backend("jobmaster.agents.nats", "nats"),
}


def master_schemes() -> list[str]:
    return sorted(MASTERS)


def agent_schemes() -> list[str]:
    return sorted(AGENTS)


def _scheme(url: str) -> str:
    return url.split(":", 1)[0].lower()


def _load(scheme: str, backend: Backend) -> ModuleType:
    """The backend's module; a driver that is not installed is named with the extra that installs it."""
    try:
        return importlib.import_module(backend.module)
    except ImportError as exc:
        missing = exc.name or ""
        if backend.extra is None or missing == "jobmaster" or missing.startswith("jobmaster."):
            raise
        raise ConfigError(
            f"{scheme}:// needs the {backend.extra!r} extra: pip install 'jobmaster[{backend.extra}]' ({exc})"
        ) from exc


def master_module(url: str) -> ModuleType:
    """The module serving the master URL's scheme (its `STORE` class)."""
    scheme = _scheme(url)
    backend = MASTERS.get(scheme)
    if backend is None:
        raise ConfigError(f"no master backend for URL scheme {scheme!r}")
    return _load(scheme, backend)


def make_master(url: str, cluster_id: str) -> MasterStore:
    store: MasterStore = master_module(url).STORE(url, cluster_id)
    return store


def make_agent(url: str, cluster_id: str, name: str) -> AgentTransport:
    scheme = _scheme(url)
    backend = AGENTS.get(scheme)
    if backend is None:
        raise ConfigError(f"no agent backend for URL scheme {scheme!r}")
    transport: AgentTransport = _load(scheme, backend).TRANSPORT(url, cluster_id, name)
    return transport


def latest_schema_version(url: str) -> int:
    """The master schema version this code migrates to (no connection needed)."""
    version: int = master_module(url).STORE.latest_schema_version()
    return version
