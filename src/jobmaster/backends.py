"""Discovery of master and agent backends.

Each module in `jobmaster.master` and `jobmaster.agents` that declares `SCHEMES` and a `STORE` or
`TRANSPORT` class is a backend: adding a backend means adding one module, never editing the engine.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType

from jobmaster.agents.base import AgentTransport
from jobmaster.errors import ConfigError
from jobmaster.master.base import MasterStore


def _modules(package: str) -> list[ModuleType]:
    parent = importlib.import_module(package)
    found = []
    for info in pkgutil.iter_modules(parent.__path__):
        module = importlib.import_module(f"{package}.{info.name}")
        if hasattr(module, "SCHEMES"):
            found.append(module)
    return found


@cache
def _master_modules() -> dict[str, ModuleType]:
    return {s: m for m in _modules("jobmaster.master") for s in m.SCHEMES}


@cache
def _agent_modules() -> dict[str, ModuleType]:
    return {s: m for m in _modules("jobmaster.agents") for s in m.SCHEMES}


def master_schemes() -> list[str]:
    return sorted(_master_modules())


def agent_schemes() -> list[str]:
    return sorted(_agent_modules())


def _scheme(url: str) -> str:
    return url.split(":", 1)[0].lower()


def make_master(url: str, cluster_id: str) -> MasterStore:
    module = _master_modules().get(_scheme(url))
    if module is None:
        raise ConfigError(f"no master backend for URL scheme {_scheme(url)!r}")
    store: MasterStore = module.STORE(url, cluster_id)
    return store


def make_agent(url: str, cluster_id: str, name: str) -> AgentTransport:
    module = _agent_modules().get(_scheme(url))
    if module is None:
        raise ConfigError(f"no agent backend for URL scheme {_scheme(url)!r}")
    transport: AgentTransport = module.TRANSPORT(url, cluster_id, name)
    return transport
