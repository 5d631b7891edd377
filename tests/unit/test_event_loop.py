"""The event loop a command's process runs on: uvloop by default, asyncio's own on request."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from jobmaster.cli.common import EVENT_LOOP_ENV, CliError, event_loop_name, run_coroutine


async def _loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_auto_runs_on_uvloop_where_it_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EVENT_LOOP_ENV, raising=False)
    assert event_loop_name() == "uvloop"
    assert run_coroutine(_loop_type()) is uvloop.Loop


def test_asyncio_runs_on_the_standard_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EVENT_LOOP_ENV, "asyncio")
    loop_type = run_coroutine(_loop_type())
    assert loop_type is not uvloop.Loop
    assert issubclass(loop_type, asyncio.BaseEventLoop)


def test_an_unknown_loop_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EVENT_LOOP_ENV, "tokio")
    main = _loop_type()
    with pytest.raises(CliError, match="JOBMASTER_EVENT_LOOP='tokio' is not one of auto, uvloop, asyncio"):
        run_coroutine(main)
    assert main.cr_frame is None  # closed, not left to warn that it was never awaited
