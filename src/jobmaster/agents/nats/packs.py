"""Packs: the new jobs of one push to one bucket as one NATS message, and their settlement ledger.

Why: one NATS message per job costs nats-server a stored publish, a delivery and an API request to
remove it, and on a 2-core machine that alone used the whole CPU budget of 25,000 jobs a second. A
push of new jobs (version 0, the YES path) therefore stores them as one pack. The pack cannot be
changed in place, so which of its members are settled (acknowledged, claimed onto their own subject,
or duplicates) is written beside it, as one small ledger message per pack that each update replaces;
the pack and its ledger are removed once every member is settled.

The binary layout of a pack and the text form of a ledger are pure functions; `flush` and the
functions after it write and read ledgers on the stream.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterable, Sequence

from nats.aio.client import Client

from jobmaster.agents.nats.index import Pack, View, merge
from jobmaster.agents.nats.wire import (
    EXPECT_SUBJECT_SEQ,
    SEQUENCE,
    SETTLED,
    WRONG_LAST_SEQUENCE,
    JetStream,
    NatsAgentError,
    err_code,
    header_int,
)

#: A member's frame before its payload: payload length, master version, due time.
MEMBER = struct.Struct("<IId")
#: At most this many jobs in one pack: a pack is read whole, and its ledger lists its members.
MAX_MEMBERS = 1000
#: Bytes kept free of a message's limit for the headers other than the member ids.
HEADROOM = 4096
#: The member ids travel in one header, and nats-server refuses headers over 64 KiB in all.
MAX_IDS_BYTES = 60_000

#: Rounds of a pack's ledger write that found another process's write in between.
LEDGER_ATTEMPTS = 3

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


async def flush(js: JetStream, nc: Client, view: View) -> None:
    """Write what this process settled in its packs: remove each pack whose members are all
    settled (and its ledger), and write a new ledger for each other changed one. A write that
    fails stays due, for the next call to retry."""
    tokens, view.dirty = view.dirty, set()
    orphans, view.orphans = view.orphans, []
    try:
        for _ in range(LEDGER_ATTEMPTS):
            packs = [view.packs[t] for t in tokens if t in view.packs]
            done = [p for p in packs if p.done]
            if done or orphans:
                seqs = [p.ledger_seq for p in done if p.ledger_seq] + orphans + [p.seq for p in done]
                await js.delete(nc, seqs, f"removing settled packs of bucket {view.bucket_id}")
                for pack in done:
                    if view.packs.get(pack.token) is pack:
                        del view.packs[pack.token]
                orphans = []
            behind = [p for p in packs if not p.done and len(p.settled) > p.logged]
            tokens = {p.token for p in await write_ledgers(js, nc, view, behind)}
            if not tokens:
                return
    finally:
        view.dirty |= tokens
        view.orphans += orphans


async def write_ledgers(js: JetStream, nc: Client, view: View, packs: list[Pack]) -> list[Pack]:
    """Replace each pack's ledger, guarded by the sequence of the last one we know, so that of
    two processes settling members of one pack neither undoes the other. Returns the packs
    another process wrote to meanwhile, with its ledger merged in, to write again."""
    if not packs:
        return []
    written = [(p, set(p.settled), p.ledger_seq) for p in packs]
    replies = await js.many(
        nc,
        [
            (
                f"{view.prefix}{p.token}.s",
                b"",
                {SETTLED: ranges(settled), EXPECT_SUBJECT_SEQ: str(last)},
            )
            for p, settled, last in written
        ],
    )
    conflicts: list[Pack] = []
    for (pack, settled, _), reply in zip(written, replies, strict=True):
        if "error" not in reply:
            if int(reply["seq"]) > pack.ledger_seq:
                pack.ledger_seq, pack.logged = int(reply["seq"]), len(settled)
        elif err_code(reply) == WRONG_LAST_SEQUENCE:
            conflicts.append(pack)
        else:
            raise NatsAgentError(
                f"agent {js.name!r}: bucket {view.bucket_id}: cannot write the ledger of pack {pack.token}",
                reply,
            )
    for pack in conflicts:
        current = await read_ledger(js, nc, f"{view.prefix}{pack.token}.s", len(pack.ids))
        if current is None:
            pack.ledger_seq, pack.logged = 0, 0
            continue
        pack.ledger_seq, settled = current
        pack.logged = len(settled)
        merge(view, pack, settled)
    return conflicts


async def read_ledger(js: JetStream, nc: Client, subject: str, size: int) -> tuple[int, set[int]] | None:
    """A pack's stored ledger: its sequence and the members it settles (None: no ledger)."""
    ledger = await js.direct(nc, {"last_by_subj": subject})
    if ledger is None:
        return None
    headers = ledger.headers or {}
    return header_int(headers.get(SEQUENCE)), parse_ranges(headers.get(SETTLED, ""), size)
