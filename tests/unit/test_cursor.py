"""The listing cursor: an exact, URL-safe position, and a refusal that names anything else."""

from __future__ import annotations

import base64
import re

import pytest

from helpers import make_job
from jobmaster.errors import QueryError
from jobmaster.jobs.paging import decode_cursor, encode_cursor


def test_a_cursor_names_its_job_s_position_exactly() -> None:
    job = make_job()
    job.scheduled_at = 1764942311.1234567
    cursor = encode_cursor(job)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor)
    assert decode_cursor(cursor) == (job.scheduled_at, job.id)
    job.scheduled_at = 5e-324  # the smallest float survives the trip
    assert decode_cursor(encode_cursor(job)) == (5e-324, job.id)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "a b",
        "abc=",
        "x" * 300,
        _b64("not json"),
        _b64("{}"),
        _b64("[1.5]"),
        _b64('[1.5, "id", 3]'),
        _b64('["1.5", "id"]'),
        _b64('[true, "id"]'),
        _b64('[1.5, ""]'),
        _b64("[1.5, 7]"),
        _b64('[NaN, "id"]'),
        _b64('[Infinity, "id"]'),
        _b64(f'[1.5, "{"x" * 65}"]'),
        base64.urlsafe_b64encode(b"\xff\xfe").decode().rstrip("="),
    ],
)
def test_anything_else_is_refused_and_named(cursor: str) -> None:
    with pytest.raises(QueryError, match=re.escape(f"malformed cursor {cursor!r}")):
        decode_cursor(cursor)
