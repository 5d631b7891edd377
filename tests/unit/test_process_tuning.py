"""`run_worker_process`: the tuning `jobmaster worker` applies, callable by an application."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest
import uvloop

import jobmaster
from jobmaster.errors import ConfigError
from jobmaster.runtime.process import WORKER_GC_THRESHOLD, event_loop_factory


async def _loop_and_threshold() -> tuple[type, int]:
    return type(asyncio.get_running_loop()), gc.get_threshold()[0]


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restore_gc")
def test_a_worker_process_runs_tuned_on_uvloop_by_default() -> None:
    loop_type, threshold = jobmaster.run_worker_process(_loop_and_threshold())
    assert loop_type is uvloop.Loop
    assert threshold == WORKER_GC_THRESHOLD
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("restore_gc")
def test_a_worker_process_can_run_on_the_standard_loop() -> None:
    loop_type, threshold = jobmaster.run_worker_process(_loop_and_threshold(), event_loop="asyncio")
    assert loop_type is not uvloop.Loop
    assert issubclass(loop_type, asyncio.BaseEventLoop)
    assert threshold == WORKER_GC_THRESHOLD


def test_an_unknown_event_loop_is_refused_before_anything_runs() -> None:
    before = gc.get_threshold()
    main = _loop_and_threshold()
    with pytest.raises(ConfigError, match="event loop 'tokio' is not one of auto, uvloop, asyncio"):
        jobmaster.run_worker_process(main, event_loop="tokio")
    assert main.cr_frame is None  # closed, not left to warn that it was never awaited
    assert gc.get_threshold() == before


def test_the_loop_factories() -> None:
    assert event_loop_factory("asyncio") is None
    assert event_loop_factory("auto") is uvloop.new_event_loop
    assert event_loop_factory("uvloop") is uvloop.new_event_loop
