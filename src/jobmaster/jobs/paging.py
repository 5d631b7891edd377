"""Pages of a job listing, and the cursor that names where the next page starts.

Jobs are listed latest due time first, ties broken by id, descending: `(scheduled_at, id)` is a
total order because ids are unique, so a position in it is one job's pair of values. The next page
is "the jobs after that position" (keyset paging): the database walks an index from there and reads
only the page, however deep it is, where an `OFFSET` reads and throws away every row before it. A
job inserted or changed meanwhile cannot shift the rows after the position, so a walk with a cursor
never shows a job twice or skips one that stayed where it was.

The cursor is the position as URL-safe base64 of a small JSON list, `[scheduled_at, id]`: opaque to
callers (they pass back what they got), exact (a JSON float round-trips), and safe in a URL or a
shell argument.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass

from jobmaster.errors import QueryError
from jobmaster.jobs.model import Job

#: Longer than any cursor this module makes (ids are 64 characters at most in every schema).
MAX_CURSOR = 256
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of a listing: its jobs and the cursor of the page after it.

    `next_cursor` is None when no job follows this page's last one (at the time of the query); pass
    it as `after=` to get the next page.
    """

    jobs: list[Job]
    next_cursor: str | None


def encode_cursor(job: Job) -> str:
    """The cursor of the jobs listed after `job`."""
    raw = json.dumps([job.scheduled_at, job.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The `(scheduled_at, id)` position a cursor names; a `QueryError` naming it if it names none."""
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR or not _ALPHABET.fullmatch(cursor):
        raise QueryError(f"malformed cursor {cursor!r}: pass back a next_cursor of a listing")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)
    except (binascii.Error, ValueError):
        raise QueryError(f"malformed cursor {cursor!r}: pass back a next_cursor of a listing") from None
    match position:
        case [int() | float() as at, str() as job_id] if (
            not isinstance(at, bool) and math.isfinite(at) and 0 < len(job_id) <= 64
        ):
            return float(at), job_id
    raise QueryError(f"malformed cursor {cursor!r}: pass back a next_cursor of a listing")
