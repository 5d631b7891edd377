"""The per-bucket index: what one process knows of a bucket's messages, in due order.

Pure data and functions over it (no I/O): the reader feeds it (`reader`), claims and reads take
from it (`transport`), and settlement of pack members is recorded in it for `packs` to write.
The index never trusts itself; see the package docstring for why a stale entry is harmless.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from jobmaster.agents.base import NEXT_DUE_SCAN

if TYPE_CHECKING:
    from jobmaster.agents.nats.wire import Pull


@dataclass(slots=True, eq=False)
class Pack:
    """A pack as this process knows it: its members, and which of them are settled."""

    token: str
    seq: int
    ids: list[str]
    settled: set[int] = field(default_factory=set)
    #: The newest ledger of this pack we wrote or read (0: none), and how many members it settles.
    ledger_seq: int = 0
    logged: int = 0

    @property
    def done(self) -> bool:
        return len(self.settled) >= len(self.ids)


@dataclass(slots=True)
class Entry:
    seq: int
    due_at: float
    version: int
    visible_at: float
    payload: bytes
    #: The pack it came in and its place there; None for a message on the job's own subject.
    pack: Pack | None = None
    index: int = 0


#: (due, seq, place in its pack, job id): ties in due time compare integers, in arrival order.
Item = tuple[float, int, int, str]


def due_item(job_id: str, entry: Entry) -> Item:
    return (entry.due_at, entry.seq, entry.index, job_id)


class DueOrder:
    """Items earliest first: a run of items that came in order, and a heap for the rest.

    Messages mostly arrive in due order (a pack's members share their due time and follow each
    other), and then each costs an append and a pop off a deque; a heap of a bucket's 200,000
    waiting jobs took 40% of a reader's time pushing and popping.
    """

    __slots__ = ("_heap", "_run")

    def __init__(self) -> None:
        self._run: collections.deque[Item] = collections.deque()
        self._heap: list[Item] = []

    def __bool__(self) -> bool:
        return bool(self._run) or bool(self._heap)

    def push(self, item: Item) -> None:
        run = self._run
        if not run or item >= run[-1]:
            run.append(item)
        else:
            heapq.heappush(self._heap, item)

    def first(self) -> Item:
        run, heap = self._run, self._heap
        if heap and (not run or heap[0] < run[0]):
            return heap[0]
        return run[0]

    def pop(self) -> Item:
        run, heap = self._run, self._heap
        if heap and (not run or heap[0] < run[0]):
            return heapq.heappop(heap)
        return run.popleft()

    def pop_due(self, due_before: float) -> Item | None:
        """The first item if it is due by `due_before`, taken off; None otherwise (one call a job)."""
        run, heap = self._run, self._heap
        if heap and (not run or heap[0] < run[0]):
            return heapq.heappop(heap) if heap[0][0] <= due_before else None
        return run.popleft() if run and run[0][0] <= due_before else None


@dataclass(slots=True)
class View:
    """One bucket as this process last read it (see the module docstring for why it may be stale)."""

    bucket_id: str
    subjects: str
    prefix: str
    entries: dict[str, Entry] = field(default_factory=dict)
    #: Entries in due order, then arrival order, so a claim reads as many as it takes instead of
    #: the whole bucket. An item counts only while `entries` holds that job with that seq: replaced
    #: and removed entries are skipped when they come up.
    by_due: DueOrder = field(default_factory=DueOrder)
    #: Entries the owner's last read took off `by_due`; they go back unless acknowledged meanwhile.
    lent: list[tuple[str, Entry]] = field(default_factory=list)
    #: No entry is due later than this (an upper bound): unsaved claims skip the read while
    #: every message is due before their window, the usual case.
    latest_due: float = -math.inf
    consumer: str | None = None
    last_seq: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: Pulled messages arrive under their own subjects, so each view has its own subscription;
    #: a pull's terminating status arrives on `<deliver>.<pull number>`, which tells stale ones apart.
    deliver: str = ""
    consumer_seq: int = 0
    #: Set on reconnect: the server may have restarted and lost the consumer; make a new one.
    renew: bool = False
    sub: Subscription | None = None
    pull: Pull | None = None
    pulls: int = 0
    #: Packs read and not yet removed, by token; those whose settlement must be written; ledgers
    #: whose pack is gone, to remove.
    packs: dict[str, Pack] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    orphans: list[int] = field(default_factory=list)
    #: A one-off scan (count, find) rather than a claimer's view: headers only, and with `collect`
    #: set, the messages are kept as they are instead of being applied.
    headers_only: bool = False
    collect: list[tuple[int, Msg]] | None = None

    async def on_msg(self, msg: Msg) -> None:
        pull = self.pull
        if pull is None:
            return
        # Stored messages keep their own subject; statuses come on the reply subject of the pull.
        if not msg.subject.startswith(self.deliver):
            pull.add(msg)
        elif msg.subject == f"{self.deliver}.{self.pulls}":
            pull.finish(msg)

    async def unsubscribe(self) -> None:
        sub, self.sub = self.sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()


def first_due(view: View, limit: int, due_before: float, now: float) -> list[tuple[str, Entry]]:
    """Up to `limit` visible entries due by `due_before`, earliest first, taken off the due order.

    Entries claimed and not yet visible again are skipped and put back; stale items are dropped.
    """
    restore(view)
    picked: list[tuple[str, Entry]] = []
    hidden: list[Item] = []
    order, entries = view.by_due, view.entries
    while len(picked) < limit:
        item = order.pop_due(due_before)
        if item is None:
            break
        entry = entries.get(item[3])
        if entry is None or entry.seq != item[1]:
            continue
        if entry.visible_at > now:
            hidden.append(item)
        else:
            picked.append((item[3], entry))
    for item in hidden:
        order.push(item)
    return picked


def next_due(view: View) -> float | None:
    """The earliest `max(due, visible)` among the first `NEXT_DUE_SCAN` entries in due order.

    The walk stops early once the next entry is due no sooner than the best found, which is
    usually the first one; stale items met on the way are dropped.
    """
    restore(view)
    taken: list[Item] = []
    best = math.inf
    order = view.by_due
    while order and len(taken) < NEXT_DUE_SCAN and order.first()[0] < best:
        item = order.pop()
        entry = view.entries.get(item[3])
        if entry is None or entry.seq != item[1]:
            continue
        taken.append(item)
        best = min(best, max(entry.due_at, entry.visible_at))
    for item in taken:
        order.push(item)
    return None if best == math.inf else best


def restore(view: View) -> None:
    """Put back what the owner read and has not acknowledged (usually nothing: it acknowledges
    before it reads again), so a read costs one pass through the due order, not two."""
    for job_id, entry in view.lent:
        if view.entries.get(job_id) is entry:
            view.by_due.push(due_item(job_id, entry))
    view.lent.clear()


def enter(view: View, job_id: str, entry: Entry) -> None:
    view.entries[job_id] = entry
    view.by_due.push(due_item(job_id, entry))
    view.latest_due = max(view.latest_due, entry.due_at)


def settle(view: View, pack: Pack, index: int) -> None:
    """Mark a member settled here; `packs.flush` writes it to the ledger or removes the pack."""
    if index not in pack.settled:
        pack.settled.add(index)
        view.dirty.add(pack.token)


def merge(view: View, pack: Pack, settled: set[int]) -> None:
    """Take in what another process settled: those members are no longer ours to hand out."""
    for index in settled - pack.settled:
        job_id = pack.ids[index]
        entry = view.entries.get(job_id)
        if entry is not None and entry.pack is pack:
            del view.entries[job_id]
    pack.settled |= settled
    if pack.done:
        view.dirty.add(pack.token)
