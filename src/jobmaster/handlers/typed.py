"""The typed call path: what `@jm.handler` returns.

The decorated function stays callable as itself, and gains scheduling methods whose parameters are
its own, typed with `ParamSpec`, so an IDE and mypy check a job's arguments where it is scheduled:

    @jm.handler
    async def send_welcome(ctx: JobContext, email: str, retries: int = 0) -> None: ...

    await send_welcome.schedule(email="ada@example.com")        # checked: email must be a str
    await send_welcome.options(delay="10s", priority="high").schedule("ada@example.com")
    send_welcome.sync.schedule(email="ada@example.com")          # sync code (Django, Flask, scripts)

A first parameter annotated `JobContext` is the context the worker passes: the scheduling methods
leave it out. Positional arguments are bound to the parameters' names (job data travels by
keyword); arguments that do not bind, or parameters that cannot be passed by keyword, are refused
with a `ScheduleError` naming the handler, before anything is written. Everything goes through
`jm.schedule` / `jm.schedule_many`, so middleware, validation and events are the same.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    ParamSpec,
    Protocol,
    TypeVar,
    Unpack,
    cast,
    overload,
)

from jobmaster.handlers.context import JobContext
from jobmaster.handlers.registry import Handler
from jobmaster.jobs.options import JobOptions

if TYPE_CHECKING:
    from jobmaster.app import JobMaster

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class HandlerCalls(Generic[P]):
    """Scheduling calls of one handler with a set of options (`handler.options(...)`)."""

    def __init__(self, app: JobMaster, handler: Handler, options: JobOptions) -> None:
        self._app = app
        self._handler = handler
        self._options = options

    @property
    def definition_id(self) -> str:
        return self._handler.definition_id

    def options(self, **options: Unpack[JobOptions]) -> HandlerCalls[P]:
        """The same calls with these options (`delay`, `at`, `priority`, `lane`, ...) added."""
        merged: JobOptions = {**self._options, **options}
        return HandlerCalls(self._app, self._handler, merged)

    async def schedule(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """Schedule one job with these arguments; returns its id once it is durable."""
        data = self._handler.data_of(args, kwargs)
        return await self._app.schedule(self._handler.definition_id, data, **self._options)

    async def schedule_many(self, items: Iterable[Mapping[str, Any]]) -> list[str]:
        """Schedule one job per item (the keyword arguments of each) in one batch."""
        return await self._app.schedule_many(
            self._handler.definition_id, [dict(item) for item in items], **self._options
        )

    @property
    def sync(self) -> SyncHandlerCalls[P]:
        """The same calls, blocking, for sync code (they wrap these through `jm.sync`)."""
        return SyncHandlerCalls(self)


class SyncHandlerCalls(Generic[P]):
    """Blocking twins of `HandlerCalls`: they call `jm.sync`, which runs the async calls."""

    def __init__(self, calls: HandlerCalls[P]) -> None:
        self._calls = calls

    def schedule(self, *args: P.args, **kwargs: P.kwargs) -> str:
        calls = self._calls
        data = calls._handler.data_of(args, kwargs)
        return calls._app.sync.schedule(calls.definition_id, data, **calls._options)

    def schedule_many(self, items: Iterable[Mapping[str, Any]]) -> list[str]:
        calls = self._calls
        return calls._app.sync.schedule_many(calls.definition_id, [dict(i) for i in items], **calls._options)


class _Registered(HandlerCalls[P]):
    """What both kinds of handler object share: the function's identity, under its own name."""

    #: The function's, set by `update_wrapper` (as are its name, module, docstring and signature).
    __qualname__: str

    def __init__(self, app: JobMaster, handler: Handler, func: Callable[..., Any]) -> None:
        super().__init__(app, handler, {})
        functools.update_wrapper(cast(Callable[..., Any], self), func)
        self.__jobmaster_id__ = handler.definition_id

    def __repr__(self) -> str:
        return f"<jobmaster handler {self.definition_id!r}>"

    def __reduce__(self) -> str:
        """Pickled by reference, as the function was: the module's attribute of this name."""
        return self.__qualname__


class JobHandler(_Registered[P], Generic[P, R_co]):
    """A handler that takes no context: called as the function, scheduled with its parameters."""

    def __init__(self, app: JobMaster, handler: Handler, func: Callable[P, R_co]) -> None:
        super().__init__(app, handler, func)
        self.func = func

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co:
        return self.func(*args, **kwargs)


class ContextJobHandler(_Registered[P], Generic[P, R_co]):
    """A handler whose first parameter is its `JobContext`: scheduled with the parameters after it."""

    def __init__(
        self, app: JobMaster, handler: Handler, func: Callable[Concatenate[JobContext, P], R_co]
    ) -> None:
        super().__init__(app, handler, func)
        self.func = func

    if TYPE_CHECKING:

        def __call__(self, ctx: JobContext, /, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    else:

        def __call__(self, *args, **kwargs):
            """As the function itself: the context may come by keyword too, as it could before."""
            return self.func(*args, **kwargs)


class HandlerDecorator(Protocol):
    """What `@jm.handler(...)` with options returns: it makes a handler of the function it decorates."""

    @overload
    def __call__(self, func: Callable[Concatenate[JobContext, P], R], /) -> ContextJobHandler[P, R]: ...

    @overload
    def __call__(self, func: Callable[P, R], /) -> JobHandler[P, R]: ...


def unwrap(func: Callable[..., Any]) -> Callable[..., Any]:
    """The plain function of a handler object (decorating it for a second app registers the function)."""
    if isinstance(func, JobHandler | ContextJobHandler):
        inner: Callable[..., Any] = func.func
        return inner
    return func


def handler_object(app: JobMaster, handler: Handler) -> JobHandler[Any, Any] | ContextJobHandler[Any, Any]:
    if handler.wants_context:
        return ContextJobHandler(app, handler, handler.func)
    return JobHandler(app, handler, handler.func)
