"""Pure logic of the worker logs: outages once per change, job fields on records, the formats."""

from __future__ import annotations

import json
import logging

import pytest

from helpers import make_job
from jobmaster.logs import CURRENT_JOB, JobFieldsFilter, JsonFormatter, Outages, TextFormatter
from jobmaster.logs import outages as outages_module


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(outages_module.time, "monotonic", fake)
    return fake


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]


def test_an_outage_is_one_line_down_and_one_back_whatever_the_retries(clock, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="jobmaster.connection")
    outages = Outages()
    outages.ok("the master")
    for n in range(5):
        outages.failed("the master", ConnectionRefusedError("refused"), f"call {n}")
        clock.now += 1
    assert outages.is_down("the master")
    outages.ok("the master")
    outages.ok("the master")
    assert _lines(caplog) == [
        (
            "WARNING",
            "the master failed while call 0: ConnectionRefusedError: refused; retrying until it answers",
        ),
        ("INFO", "the master answers again after 5.0s (5 failed call(s) retried)"),
    ]
    assert not outages.is_down("the master")


def test_stale_connections_failing_right_after_a_recovery_stay_quiet_unless_it_lasts(clock, caplog) -> None:
    caplog.set_level(logging.INFO, logger="jobmaster.connection")
    outages = Outages()
    outages.failed("the master", OSError("down"), "renewing")
    clock.now += 3
    outages.ok("the master")
    caplog.clear()
    clock.now += 1  # a pooled connection the restart broke fails once, then works
    outages.failed("the master", OSError("connection was closed"), "claiming")
    outages.ok("the master")
    assert _lines(caplog) == []
    clock.now += 1  # down again, and this time it lasts past the settling time
    outages.failed("the master", OSError("down"), "claiming")
    clock.now += outages_module.SETTLE_S
    outages.failed("the master", OSError("down"), "claiming")
    assert [level for level, _ in _lines(caplog)] == ["WARNING"]
    assert outages.is_down("the master")


def test_services_are_tracked_apart(clock, caplog) -> None:
    caplog.set_level(logging.INFO, logger="jobmaster.connection")
    outages = Outages()
    outages.failed("agent 'fast'", OSError("x"), "reading")
    outages.ok("the master")
    assert outages.is_down("agent 'fast'")
    (line,) = _lines(caplog)
    assert line[1].startswith("agent 'fast' failed while reading")


def _record(message: str = "hello") -> logging.LogRecord:
    return logging.LogRecord("jobmaster.job.x", logging.WARNING, __file__, 1, message, (), None)


def test_records_written_during_a_run_carry_the_job_fields_and_others_none() -> None:
    job = make_job(-1)
    job.attempts = 2
    outside = _record()
    JobFieldsFilter().filter(outside)
    assert outside.job_id is None and outside.handler is None  # type: ignore[attr-defined]
    token = CURRENT_JOB.set(job)
    try:
        inside = _record()
        JobFieldsFilter().filter(inside)
    finally:
        CURRENT_JOB.reset(token)
    fields = (inside.job_id, inside.handler, inside.attempt, inside.lane, inside.priority)  # type: ignore[attr-defined]
    assert fields == (job.id, job.definition_id, 2, job.lane, job.priority.name)
    assert f"[job {job.id}] hello" in TextFormatter().format(inside)
    assert "[job" not in TextFormatter().format(outside)
    entry = json.loads(JsonFormatter().format(inside))
    assert entry["job_id"] == job.id and entry["attempt"] == 2 and entry["message"] == "hello"
    assert "job_id" not in json.loads(JsonFormatter().format(outside))


def test_a_traceback_stays_on_one_line_in_text_and_is_a_field_in_json() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed", (), __import__("sys").exc_info()
        )
    JobFieldsFilter().filter(record)
    text = TextFormatter().format(record)
    assert "\n" not in text and "\\nValueError: boom" in text
    record.exc_text = None
    assert "ValueError: boom" in json.loads(JsonFormatter().format(record))["exception"]
