"""Packs: the new jobs of one push to one bucket as one NATS message, and their settlement ledger.

Why: one NATS message per job costs nats-server a stored publish, a delivery and an API request to
remove it, and on a 2-core machine that alone used the whole CPU budget of 25,000 jobs a second. A
push of new jobs (version 0, the YES path) therefore stores them as one pack. The pack cannot be
changed in place, so which of its members are settled (acknowledged, claimed onto their own subject,
or duplicates) is written beside it, as one small ledger message per pack that each update replaces;
the pack and its ledger are removed once every member is settled.

This module is the pure part: the binary layout of a pack and the text form of a ledger.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterable, Sequence

#: A member's frame before its payload: payload length, master version, due time.
MEMBER = struct.Struct("<IId")
#: At most this many jobs in one pack: a pack is read whole, and its ledger lists its members.
MAX_MEMBERS = 1000
#: Bytes kept free of a message's limit for the headers other than the member ids.
HEADROOM = 4096
#: The member ids travel in one header, and nats-server refuses headers over 64 KiB in all.
MAX_IDS_BYTES = 60_000

_RANGE = re.compile(r"(\d+)(?:-(\d+))?")


def pack_id(job_tokens: Sequence[str]) -> str:
    """Named after its members, so a push retried with the same jobs names the same pack."""
    return hashlib.sha256(",".join(job_tokens).encode()).hexdigest()[:24]


def encode(members: Sequence[tuple[bytes, int, float]]) -> bytes:
    """Members as (payload, version, due) frames, in order; their ids travel in a header."""
    parts: list[bytes] = []
    for payload, version, due in members:
        parts.append(MEMBER.pack(len(payload), version, due))
        parts.append(payload)
    return b"".join(parts)


def decode(data: bytes, size: int) -> list[tuple[bytes, int, float]] | None:
    """The `size` members of a pack, or None when the bytes are not such a pack (odd data)."""
    view = memoryview(data)
    members: list[tuple[bytes, int, float]] = []
    position = 0
    frame = MEMBER.size
    try:
        while position < len(view):
            length, version, due = MEMBER.unpack_from(view, position)
            start = position + frame
            position = start + length
            if position > len(view):
                return None
            members.append((bytes(view[start:position]), version, due))
    except struct.error:
        return None
    return members if len(members) == size else None


def split(sizes: Sequence[int], id_sizes: Sequence[int], limit: int) -> list[range]:
    """Consecutive groups of members, each at most MAX_MEMBERS, `limit` bytes in all and
    MAX_IDS_BYTES of ids.

    `sizes` are the bytes each member adds to a message (frame, payload and id), `id_sizes` those it
    adds to the ids header. A member too large for any pack is a group of its own, which the caller
    sends on its own subject instead.
    """
    groups: list[range] = []
    start, used, named = 0, 0, 0
    for i, (size, id_size) in enumerate(zip(sizes, id_sizes, strict=True)):
        full = i - start >= MAX_MEMBERS or used + size > limit or named + id_size > MAX_IDS_BYTES
        if i > start and full:
            groups.append(range(start, i))
            start, used, named = i, 0, 0
        used += size
        named += id_size
    if start < len(sizes):
        groups.append(range(start, len(sizes)))
    return groups


def ranges(indices: Iterable[int]) -> str:
    """Member indices as `0-41,43,45-99`: a ledger of a mostly settled pack stays short."""
    parts: list[str] = []
    ordered = sorted(set(indices))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def parse_ranges(text: str, size: int) -> set[int]:
    """The indices a ledger names, those below `size` only; odd text names none."""
    found: set[int] = set()
    for part in text.split(","):
        match = _RANGE.fullmatch(part.strip())
        if match is None:
            continue
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        found.update(range(first, min(last, size - 1) + 1))
    return found
