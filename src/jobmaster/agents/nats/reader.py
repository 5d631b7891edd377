"""Reading a bucket: one pull consumer per bucket and process, and what its messages do to the index.

Each view has its own consumer (no acks, memory state) that delivers only what was stored since the
last read, so a claim costs one pull round trip however large the backlog. A consumer the server
lost (restart) or a delivery that never came is replaced by a new consumer from where the view
stopped. Applying a message to the index is pure: a job's own message replaces an older copy, a pack
becomes entries of its members, a ledger settles the members it names.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg

from jobmaster.agents.nats import packs as nats_pack
from jobmaster.agents.nats.index import Entry, Pack, View, enter, merge, settle
from jobmaster.agents.nats.options import untoken
from jobmaster.agents.nats.wire import (
    DUE,
    PACK_IDS,
    SETTLED,
    VERSION,
    VISIBLE,
    JetStream,
    NatsAgentError,
    NatsUnavailableError,
    Pull,
    delivery,
    header_float,
    header_int,
)

log = logging.getLogger("jobmaster.agents.nats")

#: Messages per pull request while reading a bucket.
PULL_BATCH = 2000
#: A pull to a consumer the server lost (restart) gets no answer at all: how long until we check.
PULL_TIMEOUT = 2.0
#: How long a pull may take before we ask the server whether it parked it (see `answered`).
PULL_PROBE = 0.05
#: New consumers one read of a bucket may start (lost consumer, lost deliveries) before giving up.
MAX_RENEWALS = 3
#: A process's per-bucket consumer is removed by the server after this long without a pull.
CONSUMER_IDLE_S = 300.0
SCAN_IDLE_S = 5.0


async def read_new(js: JetStream, nc: Client, view: View) -> None:
    renewals = 0
    while True:
        if view.renew:
            view.renew = False
            if view.consumer is not None:
                stale, view.consumer = view.consumer, None
                await js.api(nc, f"CONSUMER.DELETE.{js.stream}.{stale}")
        if view.consumer is None:
            await create_consumer(js, nc, view)
        assert view.consumer is not None
        if view.sub is None:
            view.deliver = nc.new_inbox()
            # Unbounded: a message dropped here would be a message this process never claims.
            view.sub = await nc.subscribe(
                f"{view.deliver}.*", cb=view.on_msg, pending_msgs_limit=0, pending_bytes_limit=0
            )
        pull = view.pull = Pull(PULL_BATCH)
        view.pulls += 1
        try:
            await nc.publish(
                f"$JS.API.CONSUMER.MSG.NEXT.{js.stream}.{view.consumer}",
                orjson.dumps({"batch": PULL_BATCH, "no_wait": True}),
                reply=f"{view.deliver}.{view.pulls}",
            )
            if not await answered(js, nc, view, pull):
                # No answer at all: the server lost the consumer (a restart) or is stuck on it.
                # (No `expires` on the request: with no_wait, nats-server 2.9 would then wait
                # it out even when nothing is pending.) Read on with a new consumer.
                renewals += 1
                if renewals > MAX_RENEWALS:
                    raise NatsAgentError(
                        f"agent {js.name!r}: bucket {view.bucket_id}: no reply to a pull in time"
                    ) from None
                stale, view.consumer = view.consumer, None
                await js.api(nc, f"CONSUMER.DELETE.{js.stream}.{stale}")
                continue
        finally:
            view.pull = None
        if pull.aborted:
            raise NatsUnavailableError(
                f"agent {js.name!r}: connection to NATS at {js.safe_url} lost"
                f" while reading bucket {view.bucket_id}"
            )
        pending = 0
        resume = 0
        for msg in pull.messages:
            seq, cseq, pending = delivery(msg.reply)
            if cseq != view.consumer_seq + 1 and not resume:
                # A delivery never reached us (it cannot with unbounded subscriptions, but a
                # message skipped here would never be claimed): read again from the hole.
                resume = view.last_seq + 1
            view.consumer_seq = max(view.consumer_seq, cseq)
            if not resume:
                view.last_seq = max(view.last_seq, seq)
            if view.collect is not None:
                view.collect.append((seq, msg))
            else:
                apply(js, view, msg, seq)
        if resume:
            renewals += 1
            if renewals > MAX_RENEWALS:
                raise NatsAgentError(f"agent {js.name!r}: bucket {view.bucket_id}: deliveries lost")
            log.warning("agent %s: bucket %s: deliveries missing; reading again", js.name, view.bucket_id)
            await js.api(nc, f"CONSUMER.DELETE.{js.stream}.{view.consumer}")
            view.consumer = None
            continue
        if pull.status is None:
            if pending == 0:
                return
            continue  # a full batch, and more behind it
        if pull.status in ("404", "408"):
            return
        if pull.status == "409" and "deleted" in pull.description.lower():
            view.consumer = None
            continue
        raise NatsAgentError(
            f"agent {js.name!r}: bucket {view.bucket_id}: pull refused: {pull.status} {pull.description}"
        )


async def answered(js: JetStream, nc: Client, view: View, pull: Pull) -> bool:
    """Wait for a pull's end; False if it will not come.

    nats-server 2.9 leaves a no-wait pull unanswered, parked as a waiting request, when messages
    the consumer counted as pending were deleted before it delivered them (another process's
    ack, a withdrawn push, a replaced ledger). The consumer then reports nothing pending and a
    waiting request: that is seen within PULL_PROBE instead of after the whole PULL_TIMEOUT.
    """
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(pull.done), PULL_PROBE)
        return True
    info = await js.api(nc, f"CONSUMER.INFO.{js.stream}.{view.consumer}")
    if "error" in info or (info.get("num_pending") == 0 and info.get("num_waiting", 0) > 0):
        return pull.done.done()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(pull.done), PULL_TIMEOUT - PULL_PROBE)
        return True
    return False


async def create_consumer(js: JetStream, nc: Client, view: View) -> None:
    config: dict[str, Any] = {
        "ack_policy": "none",
        "filter_subject": view.subjects,
        # A one-off scan's consumer is deleted when done; if that fails, the server soon does.
        "inactive_threshold": int((SCAN_IDLE_S if view.headers_only else CONSUMER_IDLE_S) * 1e9),
        "mem_storage": True,
        "num_replicas": 1,
        "replay_policy": "instant",
        "headers_only": view.headers_only,
    }
    if view.last_seq:
        config |= {"deliver_policy": "by_start_sequence", "opt_start_seq": view.last_seq + 1}
    else:
        config["deliver_policy"] = "all"
    reply = await js.api(nc, f"CONSUMER.CREATE.{js.stream}", {"stream_name": js.stream, "config": config})
    if "error" in reply:
        raise NatsAgentError(f"agent {js.name!r}: cannot read bucket {view.bucket_id}", reply)
    view.consumer = str(reply["name"])
    view.consumer_seq = 0


def apply(js: JetStream, view: View, msg: Msg, seq: int) -> None:
    if seq <= 0:
        return
    name, dot, kind = msg.subject[len(view.prefix) :].partition(".")
    if not dot:
        apply_job(view, untoken(name), msg, seq)
    elif kind == "p":
        apply_pack(js, view, name, msg, seq)
    elif kind == "s":
        apply_ledger(view, name, msg, seq)


def apply_job(view: View, job_id: str, msg: Msg, seq: int) -> None:
    known = view.entries.get(job_id)
    if known is not None and known.seq >= seq:
        return
    if known is not None and known.pack is not None:
        settle(view, known.pack, known.index)  # claimed onto its own subject, or pushed anew
    headers = msg.headers or {}
    # Odd data never stops the reader: defaults make it claimable, and the engine sets it aside.
    entry = Entry(
        seq,
        header_float(headers.get(DUE)),
        header_int(headers.get(VERSION)),
        header_float(headers.get(VISIBLE)),
        msg.data,
    )
    enter(view, job_id, entry)


def apply_pack(js: JetStream, view: View, name: str, msg: Msg, seq: int) -> None:
    """Each member not settled yet becomes an entry, unless the view holds that job already:
    then the member is a second copy (a push retried with other jobs) and is settled."""
    headers = msg.headers or {}
    pack = view.packs.get(name)
    if pack is not None and pack.seq >= seq:
        return
    if pack is None:
        text = headers.get(PACK_IDS, "")
        pack = Pack(name, seq, [untoken(t) for t in text.split(",")] if text else [])
        view.packs[name] = pack
    else:
        pack.seq = seq  # the same members pushed again once the duplicate window had passed
    members = nats_pack.decode(msg.data, len(pack.ids))
    if members is None and not view.headers_only:
        # Odd data: each member gets the raw bytes, which no worker decodes, so the engine
        # reports and sets aside every job the pack names.
        log.error("agent %s: bucket %s: unreadable pack %s (seq %d)", js.name, view.bucket_id, name, seq)
    if members is None:
        members = [(msg.data, 0, 0.0)] * len(pack.ids)
    # `enter`, inlined: this loop runs once for every job that travels through NATS.
    entries, push, settled = view.entries, view.by_due.push, pack.settled
    for index, (job_id, (payload, version, due)) in enumerate(zip(pack.ids, members, strict=True)):
        if index in settled:
            continue
        known = entries.get(job_id)
        if known is not None and known.pack is not pack:
            settle(view, pack, index)
            continue
        entries[job_id] = Entry(seq, due, version, 0.0, payload, pack, index)
        push((due, seq, index, job_id))
    if members:
        view.latest_due = max(view.latest_due, max(due for _, _, due in members))
    if pack.done:  # it names no job (odd data), or only jobs the view holds already
        view.dirty.add(name)


def apply_ledger(view: View, name: str, msg: Msg, seq: int) -> None:
    pack = view.packs.get(name)
    if pack is None:
        view.orphans.append(seq)  # its pack is gone (packs are stored before their ledgers)
        return
    if seq <= pack.ledger_seq:
        return
    settled = nats_pack.parse_ranges((msg.headers or {}).get(SETTLED, ""), len(pack.ids))
    pack.ledger_seq = seq
    pack.logged = len(settled)
    merge(view, pack, settled)


async def pending(js: JetStream, nc: Client, subjects: str) -> int:
    """Messages stored on `subjects`, from a throw-away consumer's pending count."""
    config = {
        "ack_policy": "none",
        "deliver_policy": "all",
        "filter_subject": subjects,
        "inactive_threshold": int(SCAN_IDLE_S * 1e9),
        "mem_storage": True,
        "num_replicas": 1,
    }
    reply = await js.api(nc, f"CONSUMER.CREATE.{js.stream}", {"stream_name": js.stream, "config": config})
    if "error" in reply:
        raise NatsAgentError(f"agent {js.name!r}: cannot count {subjects}", reply)
    with contextlib.suppress(Exception):
        await js.api(nc, f"CONSUMER.DELETE.{js.stream}.{reply['name']}")
    return int(reply.get("num_pending", 0))


async def scan(js: JetStream, nc: Client, view: View) -> View:
    """Read a one-off view to the end of what is stored, then drop its consumer."""
    try:
        await read_new(js, nc, view)
    finally:
        await forget(js, nc, view)
    return view


async def forget(js: JetStream, nc: Client, view: View) -> None:
    await view.unsubscribe()
    if view.consumer:
        with contextlib.suppress(Exception):
            await js.api(nc, f"CONSUMER.DELETE.{js.stream}.{view.consumer}")
