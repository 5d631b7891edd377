"""Building a ClusterConfig from keywords, a TOML file and the environment.

Precedence, lowest first: TOML file, environment variables, explicit keywords. Every path ends in one
validation so the error format is the same wherever a bad value came from.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from jobmaster.config.settings import ClusterConfig
from jobmaster.errors import ConfigError

ENV_PREFIX = "JOBMASTER_"
_LIST_FIELDS = {"agents", "workers"}


def _format_error(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "config"
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


def load(
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> ClusterConfig:
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or env.get(f"{ENV_PREFIX}CONFIG")
    if path:
        values.update(from_toml(path))
    values.update(from_env(env))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return validate(values)
