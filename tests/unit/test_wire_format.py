"""The agent wire format: numbered, read by its known fields, pinned to a slow reference reader."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from helpers import make_job
from jobmaster.jobs import codec
from jobmaster.jobs.model import Job, JobStatus, Priority


def reference(raw: bytes) -> Job:
    """The wire format as its comments state it, read by field name: slow and obvious."""
    value = orjson.loads(raw)
    fields = value if isinstance(value[0], str) else value[1:]
    named: dict[str, Any] = dict(zip(codec.WIRE_FIELDS, fields, strict=False))
    named["priority"] = Priority(named["priority"])
    named["status"] = JobStatus(named["status"])
    return Job(**named)


def _jobs(count: int) -> list[Job]:
    rng = random.Random(7)
    jobs = []
    for n in range(count):
        job = make_job(
            rng.uniform(-10, 1000),
            priority=rng.choice(list(Priority)),
            lane=rng.choice(["Default", "Heavy"]),
            status=rng.choice(list(JobStatus)),
            data={"n": n, "tags": ["a"] * rng.randint(0, 3)},
            metadata={"team": rng.choice("xyz")} if n % 2 else {},
            max_retries=rng.randint(0, 9),
            timeout_s=rng.uniform(0.5, 600),
        )
        job.attempts, job.version = rng.randint(0, 5), rng.randint(0, 9)
        job.attempt_limit = job.max_retries + 1 + rng.randint(0, 2)
        jobs.append(job)
    return jobs


def _shapes(job: Job) -> dict[str, bytes]:
    """The job as every format this version reads: its own, format 1, and two newer ones."""
    current = orjson.loads(codec.job_to_bytes(job))
    fields = current[1:]
    return {
        "current": codec.job_to_bytes(job),
        "format 1": orjson.dumps(fields),
        "next": orjson.dumps([codec.FORMAT + 1, *fields, {"unique_key": "k"}]),
        "far": orjson.dumps([codec.FORMAT + 40, *fields, None, [1, 2], "more", 3.5]),
    }


#: The fields of every released wire format, in order. Messages of each are in agents' queues during
#: a rolling upgrade, so a released format never changes: a new field (a `wire` place in
#: `jobs/columns.py`) is a new FORMAT, appended here, whose reader still takes the older formats.
_FIELDS_1 = (
    "id",
    "definition_id",
    "scheduled_at",
    "created_at",
    "priority",
    "lane",
    "data",
    "metadata",
    "timeout_s",
    "max_retries",
    "status",
    "attempts",
    "version",
    "original_scheduled_at",
    "attempt_limit",
)
RELEASED = {1: _FIELDS_1, 2: _FIELDS_1}


def test_released_formats_keep_their_fields() -> None:
    assert max(RELEASED) == codec.FORMAT, "a new wire format is listed in RELEASED"
    assert RELEASED[codec.FORMAT] == codec.WIRE_FIELDS, "new wire fields need a new FORMAT"
    for older, newer in zip(RELEASED.values(), list(RELEASED.values())[1:], strict=False):
        assert newer[: len(older)] == older, "a format only appends fields"


def test_the_written_message_is_the_format_number_then_the_named_fields() -> None:
    job = _jobs(1)[0]
    value = orjson.loads(codec.job_to_bytes(job))
    assert value[0] == codec.FORMAT == 2
    assert len(value) == 1 + len(codec.WIRE_FIELDS)
    for name, wire in zip(codec.WIRE_FIELDS, value[1:], strict=True):
        assert wire == getattr(job, name), name


def test_every_shape_decodes_as_the_reference_reads_it() -> None:
    """The fast path (this format) and the slow one (older, newer) agree with the reference."""
    for job in _jobs(300):
        for shape, raw in _shapes(job).items():
            decoded = codec.job_from_bytes(raw)
            assert decoded == reference(raw) == job, shape


@pytest.mark.parametrize(
    "value",
    [
        [],
        {"id": "x"},
        "a string",
        [codec.FORMAT + 1, "id", "h"],  # a newer format short of the known fields
        [1, *range(15)],  # a number below the first numbered format
        [True, *range(15)],  # a boolean is not a format number
        [0.5, *range(15)],
    ],
    ids=repr,
)
def test_a_shape_this_version_cannot_read_is_refused_by_name(value: Any) -> None:
    with pytest.raises(ValueError, match="undecodable job message"):
        codec.job_from_bytes(orjson.dumps(value))


def test_a_newer_format_with_bad_known_fields_is_refused() -> None:
    fields = orjson.loads(codec.job_to_bytes(_jobs(1)[0]))[1:]
    fields[4] = 99  # no such priority
    with pytest.raises(ValueError, match="no priority or status"):
        codec.job_from_bytes(orjson.dumps([codec.FORMAT + 1, *fields, "extra"]))
