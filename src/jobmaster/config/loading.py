"""Building a ClusterConfig from keywords, a TOML file and the environment, and saying where each
value came from.

Precedence, lowest first: defaults, TOML file, environment variables, explicit keywords. Every path
ends in one validation so the error format is the same wherever a bad value came from, and a name
that is not a setting (a misspelt keyword, TOML key or `JOBMASTER_*` variable) is refused with the
closest known one: a typo in a container's environment would otherwise leave the default in force
without a word.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from jobmaster.config.settings import AgentConfig, ClusterConfig, WorkerConfig
from jobmaster.errors import ConfigError
from jobmaster.jobs.options import closest

ENV_PREFIX = "JOBMASTER_"
_LIST_FIELDS = {"agents", "workers"}
#: The variables of the CLI and the library that are not settings (docs/configuration.md).
OTHER_VARIABLES = {
    f"{ENV_PREFIX}CONFIG": "path of the TOML file to load when none is passed",
    f"{ENV_PREFIX}EVENT_LOOP": "the CLI's event loop: auto, uvloop or asyncio",
}
#: Where a value came from, as `config show` says it.
DEFAULT, FILE, ENVIRONMENT, KEYWORD = "default", "file", "environment", "keyword"

Sources = dict[str, str]


def setting_variables() -> list[str]:
    """Every `JOBMASTER_*` variable that sets a cluster setting."""
    return sorted(
        f"{ENV_PREFIX}{name.upper()}" for name in ClusterConfig.model_fields if name not in _LIST_FIELDS
    )


def _hint(name: str, known: list[str], prefix: str = "") -> str:
    near = closest(name, known)
    return f"; did you mean {prefix}{near}?" if near else ""


def check_environment(env: Mapping[str, str]) -> None:
    """Refuse a `JOBMASTER_*` variable that is neither a setting nor a documented variable."""
    known = [*setting_variables(), *OTHER_VARIABLES]
    for key in sorted(env):
        if key.startswith(ENV_PREFIX) and key not in known:
            # compared without the prefix, which every name shares and which would make any two look alike
            names = [name.removeprefix(ENV_PREFIX) for name in known]
            hint = _hint(key.removeprefix(ENV_PREFIX), names, ENV_PREFIX)
            raise ConfigError(
                f"unknown environment variable {key}{hint} (docs/configuration.md lists every variable)"
            )


def _field_names(location: tuple[Any, ...]) -> list[str]:
    """The setting names valid where a validation error points: a cluster's, an agent's or a worker's."""
    if len(location) >= 3 and location[0] == "agents":
        return list(AgentConfig.model_fields)
    if len(location) >= 3 and location[0] == "workers":
        return list(WorkerConfig.model_fields)
    return list(ClusterConfig.model_fields)


def _format_error(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "config"
        if item["type"] == "extra_forbidden":
            name = str(item["loc"][-1])
            lines.append(f"unknown setting `{where}`{_hint(name, _field_names(item['loc']))}")
            continue
        value = item.get("input")
        shown = "" if isinstance(value, dict) else f" = {value!r}"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"invalid setting `{where}`{shown}: {message}")
    return "; ".join(lines)


def validate(values: Mapping[str, Any]) -> ClusterConfig:
    try:
        return ClusterConfig.model_validate(dict(values))
    except ValidationError as exc:
        raise ConfigError(_format_error(exc)) from None


def from_toml(path: str | Path) -> dict[str, Any]:
    """Read `[cluster]`, `[[agents]]` and `[[workers]]` (or a flat file of cluster keys)."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    values = dict(raw.pop("cluster", {}))
    values.update(raw)
    return values


def from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`JOBMASTER_TRANSIENT_THRESHOLD=5m` sets `transient_threshold`; lists come from a TOML file."""
    env = os.environ if environ is None else environ
    fields = set(ClusterConfig.model_fields) - _LIST_FIELDS
    values: dict[str, Any] = {}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name in fields:
            values[name] = value
    return values


def load_with_sources(
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> tuple[ClusterConfig, Sources]:
    """The configuration, and for each setting given anywhere where it came from (the others are
    defaults): `file PATH`, `environment JOBMASTER_NAME` or `keyword`."""
    env = os.environ if environ is None else environ
    check_environment(env)
    values: dict[str, Any] = {}
    sources: Sources = {}
    path = config_file or env.get(f"{ENV_PREFIX}CONFIG")
    if path:
        found = from_toml(path)
        values.update(found)
        sources.update(dict.fromkeys(found, f"{FILE} {path}"))
    found = from_env(env)
    values.update(found)
    sources.update({name: f"{ENVIRONMENT} {ENV_PREFIX}{name.upper()}" for name in found})
    given = {k: v for k, v in overrides.items() if v is not None}
    values.update(given)
    sources.update(dict.fromkeys(given, KEYWORD))
    return validate(values), sources


def load(
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> ClusterConfig:
    return load_with_sources(config_file, environ, **overrides)[0]
