"""The lazy backend table against the modules it names: the table is what discovery reads, so it
must say exactly what every backend module declares, and every extra it names must exist."""

from __future__ import annotations

import importlib
import pkgutil
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from jobmaster import backends
from jobmaster.errors import ConfigError

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _declaring(package: str) -> list[ModuleType]:
    """Every module of the package that declares SCHEMES: what discovery scanned for before."""
    parent = importlib.import_module(package)
    found = []
    for info in pkgutil.iter_modules(parent.__path__):
        module = importlib.import_module(f"{package}.{info.name}")
        if hasattr(module, "SCHEMES"):
            found.append(module)
    return found


@pytest.mark.parametrize(
    ("package", "table", "attribute"),
    [("jobmaster.master", backends.MASTERS, "STORE"), ("jobmaster.agents", backends.AGENTS, "TRANSPORT")],
)
def test_the_backend_table_names_what_the_modules_declare(
    package: str, table: dict[str, backends.Backend], attribute: str
) -> None:
    declared = {scheme: m.__name__ for m in _declaring(package) for scheme in m.SCHEMES}
    assert {scheme: b.module for scheme, b in table.items()} == declared
    for module in _declaring(package):
        assert hasattr(module, attribute), module.__name__


def test_every_extra_the_table_names_is_an_extra_of_the_package() -> None:
    extras = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    named = {b.extra for b in [*backends.MASTERS.values(), *backends.AGENTS.values()]} - {None}
    assert named == {"postgres", "mysql", "nats"}
    assert named <= set(extras)


def test_every_master_module_has_migrations_to_count() -> None:
    for scheme in backends.MASTERS:
        assert backends.latest_schema_version(f"{scheme}://x") >= 1, scheme


def test_an_unknown_scheme_is_named() -> None:
    with pytest.raises(ConfigError, match="no master backend for URL scheme 'redis'"):
        backends.make_master("redis://localhost", "c")
    with pytest.raises(ConfigError, match="no agent backend for URL scheme 'kafka'"):
        backends.make_agent("kafka://localhost", "c", "a")
