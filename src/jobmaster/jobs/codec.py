"""Job <-> bytes for agent messages and JSON columns.

orjson is used because it is several times faster than the standard library on the hot path and
refuses what it cannot represent instead of guessing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from jobmaster.errors import PayloadError
from jobmaster.jobs.model import Job, JobStatus, Priority


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def loads(raw: bytes | str | None) -> Any:
    if raw is None:
        return None
    return orjson.loads(raw)


def encode_payload(value: Any, what: Callable[[], str], limit: int) -> bytes:
    """Serialise user data, refusing what JSON cannot hold and what exceeds `max_message_bytes`.

    `what` names the data in an error; it is called only then (this runs once per scheduled job).
    """
    try:
        raw = orjson.dumps(value)
    except TypeError as exc:
        raise PayloadError(f"{what()} is not JSON-serialisable: {exc}") from None
    if len(raw) > limit:
        raise PayloadError(f"{what()} is {len(raw)} bytes once serialised, over max_message_bytes={limit}")
    return raw


#: The wire format this version writes: `[FORMAT, *fields]`, the fields in `WIRE_FIELDS` order.
#:
#: Formats only ever append fields, each safe to ignore for a worker that does not know it: a worker
#: reads a newer format's first `len(WIRE_FIELDS)` fields and leaves the rest, so publishers can be
#: upgraded while older workers still run. A change that cannot be made by appending needs a message
#: shape older workers refuse (they store such a message in the master as undecodable, see
#: `runtime/poison.py`); none exists yet. Format 1, the messages of releases before formats were
#: numbered, is the bare list of the same fields and is still read.
FORMAT = 2
WIRE_FIELDS = (
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
_LENGTH = 1 + len(WIRE_FIELDS)


def job_to_bytes(job: Job) -> bytes:
    return orjson.dumps(
        [
            FORMAT,
            job.id,
            job.definition_id,
            job.scheduled_at,
            job.created_at,
            int(job.priority),
            job.lane,
            job.data,
            job.metadata,
            job.timeout_s,
            job.max_retries,
            int(job.status),
            job.attempts,
            job.version,
            job.original_scheduled_at,
            job.attempt_limit,
        ]
    )


#: Lookups instead of `Priority(n)` / `JobStatus(n)`, a third of a microsecond each per message.
_PRIORITIES = {int(p): p for p in Priority}
_STATUSES = {int(s): s for s in JobStatus}


def job_from_bytes(raw: bytes) -> Job:
    """Rebuild a job from an agent message; raises ValueError on anything malformed (poison).

    Reads format 1 (unnumbered), this `FORMAT`, and newer formats by their known fields.
    """
    try:
        value = orjson.loads(raw)
        if type(value) is not list or len(value) != _LENGTH or value[0] != FORMAT:
            value = _as_current(value)  # the slow path: an older or a newer message
        (
            _,
            job_id,
            definition_id,
            scheduled_at,
            created_at,
            priority,
            lane,
            data,
            metadata,
            timeout_s,
            max_retries,
            status,
            attempts,
            version,
            original,
            attempt_limit,
        ) = value
        # Positional, in the field order of Job: every message an executor adopts passes here.
        return Job(
            str(job_id),
            str(definition_id),
            float(scheduled_at),
            float(created_at),
            _PRIORITIES[priority],
            str(lane),
            dict(data),
            dict(metadata),
            float(timeout_s),
            int(max_retries),
            int(attempt_limit),
            _STATUSES[status],
            int(attempts),
            int(version),
            float(original),
        )
    except KeyError as exc:
        raise ValueError(f"undecodable job message: no priority or status {exc}") from None
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise ValueError(f"undecodable job message: {exc}") from None


def _as_current(value: Any) -> list[Any]:
    """A message of another format as `[FORMAT, *fields]`; ValueError if it is none this reads."""
    if type(value) is not list or not value:
        raise ValueError(f"not a non-empty JSON array but {type(value).__name__}")
    head, size = value[0], len(value)
    if type(head) is str and size == len(WIRE_FIELDS):
        return [FORMAT, *value]  # format 1: the fields without a number
    if type(head) is int and head >= FORMAT and size >= _LENGTH:
        return value[:_LENGTH]  # a newer format: the fields this one knows come first
    raise ValueError(
        f"format {head!r} with {size - 1} fields; this worker reads format 1 (15 unnumbered fields)"
        f" and formats from {FORMAT} on with at least {len(WIRE_FIELDS)} fields"
    )
