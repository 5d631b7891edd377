"""Handler registration: a stable definition id per function, with per-handler defaults."""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Unpack

from jobmaster.config.settings import LANE_PATTERN
from jobmaster.durations import parse_duration
from jobmaster.errors import ConfigError, ScheduleError, UnknownHandlerError
from jobmaster.handlers.context import JobContext
from jobmaster.jobs.model import Priority
from jobmaster.jobs.options import HANDLER_OPTION_NAMES, HandlerOptions, check_names
from jobmaster.jobs.retry import RetryPolicy
from jobmaster.middleware import RunChain, RunMiddleware, compose_run

HandlerFunc = Callable[..., Any]
_CONTEXT_NAMES = ("ctx", "context")


@dataclass(slots=True, frozen=True)
class HandlerDefaults:
    """Per-handler defaults; None means "use the cluster default"."""

    priority: Priority | None = None
    lane: str | None = None
    timeout_s: float | None = None
    max_retries: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class KeywordShape:
    """The parameters of a handler that takes its data by keyword only (the usual case).

    Checking data against it is two set operations, where `Signature.bind` cost a third of the
    whole scheduling of a job.
    """

    required: frozenset[str]
    #: None when the handler takes `**kwargs`.
    allowed: frozenset[str] | None

    def admits(self, keys: Iterable[str]) -> bool:
        names = set(keys)
        return self.required <= names and (self.allowed is None or names <= self.allowed)


def keyword_shape(signature: inspect.Signature, wants_context: bool) -> KeywordShape | None:
    """None when some parameter (positional-only, `*args`) leaves the decision to `Signature.bind`."""
    required: set[str] = set()
    allowed: set[str] = set()
    takes_any = False
    for param in list(signature.parameters.values())[1 if wants_context else 0 :]:
        if param.kind is param.VAR_KEYWORD:
            takes_any = True
        elif param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            allowed.add(param.name)
            if param.default is param.empty:
                required.add(param.name)
        else:
            return None
    return KeywordShape(frozenset(required), None if takes_any else frozenset(allowed))


@dataclass(slots=True, frozen=True)
class Handler:
    definition_id: str
    func: HandlerFunc
    is_async: bool
    wants_context: bool
    defaults: HandlerDefaults
    signature: inspect.Signature
    shape: KeywordShape | None
    #: None: the cluster's retry policy.
    retry: RetryPolicy | None = None
    #: The handler's own run middleware, inside the app's.
    middleware: tuple[RunMiddleware, ...] = ()
    #: The app's run middleware and the handler's, composed once; None runs the handler bare.
    chain: RunChain | None = None

    def check_arguments(self, data: dict[str, Any]) -> None:
        """Refuse data that cannot call the handler now, rather than failing every retry later."""
        if self.shape is not None and self.shape.admits(data):
            return
        args = (None,) if self.wants_context else ()
        try:
            self.signature.bind(*args, **data)
        except TypeError as exc:
            raise ScheduleError(
                f"job data does not match the parameters of handler {self.definition_id!r}: {exc}"
            ) from None

    def data_of(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The job data of a typed call (`handler.schedule(...)`): positional arguments named after
        the parameters they bind to, since job data travels by keyword."""
        if not args:
            return kwargs
        context = (None,) if self.wants_context else ()
        try:
            bound = self.signature.bind(*context, *args, **kwargs)
        except TypeError as exc:
            raise ScheduleError(
                f"arguments do not match the parameters of handler {self.definition_id!r}: {exc}"
            ) from None
        data: dict[str, Any] = {}
        parameters = self.signature.parameters
        for name, value in list(bound.arguments.items())[len(context) :]:
            kind = parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                data.update(value)
            elif kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.VAR_POSITIONAL):
                raise ScheduleError(
                    f"handler {self.definition_id!r} takes {name!r} only by position, and job data"
                    " is passed by keyword: make it a keyword parameter to schedule it"
                )
            else:
                data[name] = value
        return data


def definition_id_of(func: HandlerFunc) -> str:
    """Module-qualified name: stable across processes and restarts, unlike object ids."""
    return f"{func.__module__}.{func.__qualname__}"


def _wants_context(func: HandlerFunc) -> bool:
    params = list(inspect.signature(func).parameters.values())
    if not params:
        return False
    first = params[0]
    return first.name in _CONTEXT_NAMES or first.annotation in (JobContext, "JobContext")


def validate_defaults(options: HandlerOptions, where: str) -> HandlerDefaults:
    """Shared by handler registration and scheduling calls so both refuse the same inputs."""
    problem = check_names(options, HANDLER_OPTION_NAMES, where)
    if problem is not None:
        raise ConfigError(problem)
    priority, lane = options.get("priority"), options.get("lane")
    timeout, max_retries = options.get("timeout"), options.get("max_retries")
    metadata = options.get("metadata")
    try:
        prio = None if priority is None else Priority.parse(priority)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if lane is not None and not re.match(LANE_PATTERN, lane):
        raise ConfigError(
            f"{where}: lane {lane!r} is not a valid lane name (letters, digits, '.', '_', '-';"
            " at most 64 characters)"
        )
    timeout_s = None
    if timeout is not None:
        try:
            timeout_s = parse_duration(timeout)
        except ValueError as exc:
            raise ConfigError(f"{where}: timeout: {exc}") from None
        if timeout_s <= 0:
            raise ConfigError(f"{where}: timeout must be > 0 seconds, got {timeout!r}")
    if max_retries is not None and (
        isinstance(max_retries, bool) or not isinstance(max_retries, int) or not 0 <= max_retries <= 1000
    ):
        raise ConfigError(f"{where}: max_retries must be an integer in 0..1000, got {max_retries!r}")
    if metadata is not None and not isinstance(metadata, dict):
        raise ConfigError(f"{where}: metadata must be a dict, got {type(metadata).__name__}")
    return HandlerDefaults(prio, lane, timeout_s, max_retries, dict(metadata or {}))


class HandlerRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._run_middleware: list[RunMiddleware] = []

    def register(
        self,
        func: HandlerFunc,
        *,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        middleware: Sequence[RunMiddleware] = (),
        **options: Unpack[HandlerOptions],
    ) -> Handler:
        definition_id = name or definition_id_of(func)
        if not callable(func):
            raise ConfigError(f"handler {definition_id!r} is not callable")
        defaults = validate_defaults(options, f"handler {definition_id!r}")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ConfigError(f"handler {definition_id!r}: retry must be a RetryPolicy, got {retry!r}")
        existing = self._handlers.get(definition_id)
        if existing is not None and existing.func is not func:
            raise ConfigError(f"handler id {definition_id!r} is already registered to another function")
        wants_context = _wants_context(func)
        signature = inspect.signature(func)
        layers = tuple(middleware)
        handler = Handler(
            definition_id=definition_id,
            func=func,
            is_async=asyncio.iscoroutinefunction(func),
            wants_context=wants_context,
            defaults=defaults,
            signature=signature,
            shape=keyword_shape(signature, wants_context),
            retry=retry,
            middleware=layers,
            chain=compose_run([*self._run_middleware, *layers]),
        )
        self._handlers[definition_id] = handler
        return handler

    def add_run_middleware(self, layer: RunMiddleware) -> None:
        """Wrap every handler's runs, those registered already and those to come (outermost first)."""
        if not callable(layer):
            raise ConfigError(f"run middleware must be callable, got {layer!r}")
        self._run_middleware.append(layer)
        for definition_id, handler in self._handlers.items():
            chain = compose_run([*self._run_middleware, *handler.middleware])
            self._handlers[definition_id] = replace(handler, chain=chain)

    def resolve(self, ref: str | HandlerFunc) -> Handler:
        """A handler by id or by function; unknown ones are refused before anything is written."""
        definition_id = (
            ref if isinstance(ref, str) else getattr(ref, "__jobmaster_id__", None) or definition_id_of(ref)
        )
        handler = self._handlers.get(definition_id)
        if handler is None:
            raise UnknownHandlerError(
                f"unknown handler {definition_id!r}; registered: "
                f"{', '.join(sorted(self._handlers)) or '(none)'}"
            )
        return handler

    def get(self, definition_id: str) -> Handler | None:
        return self._handlers.get(definition_id)

    def __iter__(self) -> Iterator[Handler]:
        return iter(self._handlers.values())

    def __len__(self) -> int:
        return len(self._handlers)
