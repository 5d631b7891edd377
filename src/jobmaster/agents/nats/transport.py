"""The NATS agent itself: the `AgentTransport` methods over the index, the reader and the packs.

The design (subjects, guarded claims, packs and ledgers, markers) is described in the package
docstring, `jobmaster.agents.nats`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import AuthorizationError
from nats.protocol.parser import AUTHORIZATION_VIOLATION

from jobmaster.agents.base import (
    AgentMessage,
    AgentTransport,
    BucketGoneError,
    ReadCursor,
)
from jobmaster.agents.nats import packs, reader
from jobmaster.agents.nats.index import (
    Entry,
    View,
    due_item,
    first_due,
    next_due,
    settle,
)
from jobmaster.agents.nats.options import parse_url, stream_name, subject_hash, token
from jobmaster.agents.nats.wire import (
    API_TIMEOUT,
    DUE,
    EXPECT_SUBJECT_SEQ,
    MSG_ID,
    NOT_FOUND_CODES,
    PACK_IDS,
    VERSION,
    VISIBLE,
    WRONG_LAST_SEQUENCE,
    JetStream,
    NatsAgentError,
    NatsUnavailableError,
    Request,
    err_code,
    header_float,
    header_int,
    new_client,
)
from jobmaster.errors import ConfigError, JobMasterError

log = logging.getLogger("jobmaster.agents.nats")

DUPLICATE_WINDOW_S = 120.0
CONNECT_TIMEOUT = 2
RECONNECT_WAIT = 1


def refused_credentials(exc: BaseException) -> bool:
    """The server refused the user, password or token: no later try will be let in (unlike a server
    not reachable yet), so start-up stops at once."""
    return isinstance(exc, AuthorizationError) or AUTHORIZATION_VIOLATION in str(exc).lower()


# ---- the transport -------------------------------------------------------------------------------


class NatsAgent(AgentTransport):
    supports_notify = True

    def __init__(self, url: str, cluster_id: str, name: str) -> None:
        super().__init__(url, cluster_id, name)
        self.options = parse_url(url)
        self.stream = stream_name(cluster_id, name)
        self.root = f"jm.{subject_hash(cluster_id, name)}"
        self.notify_subject = f"jmn.{subject_hash(cluster_id, name)}"
        self._nc: Client | None = None
        self._js = JetStream(name, self.options.safe_url, self.stream)
        self._views: dict[str, View] = {}
        self._markers: dict[str, int] = {}
        self._listeners: list[Subscription] = []
        self._last_error: Exception | None = None
        #: The server's refusal of our credentials, if it sent one: the connection's last error may
        #: be the reset that follows it.
        self._refused: Exception | None = None

    # ---- connection --------------------------------------------------------------------------

    def _client(self) -> Client:
        nc = self._nc
        if nc is None:
            raise RuntimeError(f"agent {self.name!r} is not open")
        if not nc.is_connected:
            raise NatsUnavailableError(
                f"agent {self.name!r}: not connected to NATS at {self.options.safe_url} (reconnecting)"
            )
        return nc

    async def open(self) -> None:
        if self._nc is not None:
            return
        options = self.options
        self._refused = None
        nc = new_client()
        try:
            await asyncio.wait_for(
                nc.connect(
                    servers=options.servers,
                    user=options.user,
                    password=options.password,
                    token=options.token,
                    tls=options.ssl_context(),
                    tls_hostname=options.tls_hostname,
                    name=f"jobmaster {self.cluster_id}/{self.name}",
                    connect_timeout=CONNECT_TIMEOUT,
                    reconnect_time_wait=RECONNECT_WAIT,
                    # Fail fast here; reconnect for ever once connected (set below).
                    max_reconnect_attempts=1,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                ),
                timeout=CONNECT_TIMEOUT * (len(options.servers) + 1) * 2 + RECONNECT_WAIT * 2,
            )
        except ConfigError:
            raise
        except Exception as exc:
            with contextlib.suppress(Exception):
                await nc.close()
            if self._refused is not None:
                refused = f"NATS at {options.safe_url} refused the credentials: {self._refused}"
                raise NatsAgentError(f"agent {self.name!r}: {refused}") from None
            cause = self._last_error or exc  # the connection's own error says more than a timeout
            raise NatsUnavailableError(
                f"agent {self.name!r}: cannot connect to NATS at {options.safe_url}: "
                f"{type(cause).__name__} {cause}".rstrip()
            ) from None
        nc.options["max_reconnect_attempts"] = -1
        try:
            self._check_server(await self._js.server_info(nc))
        except Exception:
            await nc.close()
            raise
        self._nc = nc
        await self._js.inbox.start(nc)

    def _check_server(self, info: dict[str, Any]) -> None:
        """Refuse a server without what the URL asked for, from the INFO it sent."""
        # nats-py upgrades to TLS only when the server requires it: refuse a silent plain connection.
        if self.options.tls and not info.get("tls_required", False):
            raise ConfigError(
                f"agent {self.name!r}: TLS was asked for but NATS at {self.options.safe_url}"
                " does not offer it"
            )
        if not info.get("jetstream", False):
            raise ConfigError(
                f"agent {self.name!r}: NATS at {self.options.safe_url} has no JetStream (start it with -js)"
            )

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        if nc is None:
            return
        views, self._views = list(self._views.values()), {}
        self._markers.clear()
        if nc.is_connected:
            consumers = [v.consumer for v in views if v.consumer]
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    asyncio.gather(
                        *(self._js.api(nc, f"CONSUMER.DELETE.{self.stream}.{c}") for c in consumers),
                        return_exceptions=True,
                    ),
                    API_TIMEOUT,
                )
        for view in views:
            await view.unsubscribe()
        self._listeners.clear()
        await self._js.inbox.stop()
        with contextlib.suppress(Exception):
            await nc.close()

    async def _on_error(self, exc: Exception) -> None:
        self._last_error = exc
        if refused_credentials(exc):
            self._refused = exc
        level = logging.DEBUG if isinstance(exc, OSError | TimeoutError) else logging.WARNING
        log.log(level, "agent %s: NATS %s: %s", self.name, type(exc).__name__, exc)

    async def _on_disconnected(self) -> None:
        # Requests written to the dead socket will never be answered: fail them now rather than
        # after their timeout.
        self._js.inbox.abort()
        for view in self._views.values():
            if view.pull is not None:
                view.pull.abort()
        if self._nc is not None:
            log.warning("agent %s: disconnected from NATS at %s", self.name, self.options.safe_url)

    async def _on_reconnected(self) -> None:
        for view in self._views.values():
            view.renew = True
        self._markers.clear()
        log.warning("agent %s: reconnected to NATS at %s", self.name, self.options.safe_url)

    # ---- schema ------------------------------------------------------------------------------

    def _stream_config(self) -> dict[str, Any]:
        return {
            "name": self.stream,
            "subjects": [f"{self.root}.>"],
            "retention": "limits",
            "storage": "file",
            # Never drop in-flight jobs to make room: if an operator caps the stream, pushes are
            # refused instead (and take the NO path).
            "discard": "new",
            "max_msgs_per_subject": 1,
            "duplicate_window": int(DUPLICATE_WINDOW_S * 1e9),
            "allow_direct": True,
            "num_replicas": self.options.replicas,
            "max_consumers": -1,
            "max_msgs": -1,
            "max_bytes": -1,
            "max_age": 0,
        }

    async def migrate(self) -> None:
        nc = self._client()
        wanted = self._stream_config()
        info = await self._js.api(nc, f"STREAM.INFO.{self.stream}")
        if err_code(info) in NOT_FOUND_CODES:
            created = await self._js.api(nc, f"STREAM.CREATE.{self.stream}", wanted)
            if "error" not in created:
                return
            info = await self._js.api(nc, f"STREAM.INFO.{self.stream}")  # another process won the race
        if "error" in info:
            raise NatsAgentError(f"agent {self.name!r}: stream {self.stream}", info)
        current = info.get("config", {})
        if any(current.get(k) != wanted[k] for k in ("subjects", "max_msgs_per_subject", "allow_direct")):
            updated = await self._js.api(nc, f"STREAM.UPDATE.{self.stream}", {**current, **wanted})
            if "error" in updated:
                raise NatsAgentError(f"agent {self.name!r}: stream {self.stream} cannot be updated", updated)

    async def drop(self) -> None:
        """Delete this agent's stream and every message in it (tests, decommissioning)."""
        nc = self._client()
        reply = await self._js.api(nc, f"STREAM.DELETE.{self.stream}")
        if "error" in reply and err_code(reply) not in NOT_FOUND_CODES:
            raise NatsAgentError(f"agent {self.name!r}: cannot delete stream {self.stream}", reply)
        self._views.clear()
        self._markers.clear()

    # ---- subjects ----------------------------------------------------------------------------

    def _marker(self, bucket_id: str) -> str:
        return f"{self.root}.{token(bucket_id)}"

    def _subject(self, bucket_id: str, job_id: str) -> str:
        return f"{self.root}.{token(bucket_id)}.{token(job_id)}"

    def _view(self, bucket_id: str) -> View:
        view = self._views.get(bucket_id)
        if view is None:
            prefix = f"{self._marker(bucket_id)}."
            view = View(bucket_id, f"{prefix}>", prefix)
            self._views[bucket_id] = view
        return view

    # ---- buckets -----------------------------------------------------------------------------

    async def listen(self, callback: Callable[[str], None]) -> None:
        async def deliver(msg: Msg) -> None:
            try:
                callback(msg.data.decode(errors="replace"))
            except Exception:
                log.exception("agent %s: bucket wake-up callback failed", self.name)

        self._listeners.append(await self._client().subscribe(self.notify_subject, cb=deliver))

    async def create_bucket(self, bucket_id: str) -> None:
        nc = self._client()
        body = orjson.dumps({"bucket": bucket_id, "agent": self.name})
        [reply] = await self._js.many(nc, [(self._marker(bucket_id), body, {EXPECT_SUBJECT_SEQ: "0"})])
        if "error" not in reply:
            self._markers[bucket_id] = int(reply["seq"])
        elif err_code(reply) != WRONG_LAST_SEQUENCE:  # that one means: it exists already
            raise NatsAgentError(f"agent {self.name!r}: cannot create bucket {bucket_id}", reply)

    async def _read_marker(self, nc: Client, bucket_id: str) -> int | None:
        """The marker's sequence, read from the stream leader (None: no such bucket)."""
        reply = await self._js.api(
            nc, f"STREAM.MSG.GET.{self.stream}", {"last_by_subj": self._marker(bucket_id)}
        )
        if "error" in reply:
            if err_code(reply) in NOT_FOUND_CODES:
                return None
            raise NatsAgentError(f"agent {self.name!r}: bucket {bucket_id}", reply)
        return int(reply["message"]["seq"])

    async def destroy_bucket(self, bucket_id: str) -> bool:
        nc = self._client()
        self._markers.pop(bucket_id, None)
        marker = await self._read_marker(nc, bucket_id)
        if marker is not None:
            await self._js.delete(nc, [marker], f"cannot destroy bucket {bucket_id}")
        # From here on, pushes fail their marker check; anything stored before is counted now.
        if await self.count(bucket_id):
            await self.create_bucket(bucket_id)
            return False
        view = self._views.pop(bucket_id, None)
        if view is not None:
            await reader.forget(self._js, nc, view)
        return True

    # ---- messages ----------------------------------------------------------------------------

    async def push(self, bucket_id: str, messages: Sequence[AgentMessage]) -> None:
        latest = list({m.job_id: m for m in messages}.values())
        if not latest:
            return
        nc = self._client()
        marker = self._markers.get(bucket_id)
        if marker is None:
            marker = await self._read_marker(nc, bucket_id)
            if marker is None:
                raise BucketGoneError(f"bucket {bucket_id} does not exist on agent {self.name!r}")
            self._markers[bucket_id] = marker
        replies = await self._js.many(nc, self._publishes(nc, bucket_id, latest))
        stored = [int(r["seq"]) for r in replies if "error" not in r and not r.get("duplicate")]
        now = await self._read_marker(nc, bucket_id)
        if now is None:
            # A destroy removed the marker meanwhile and may not have counted these: withdraw them
            # (a copy already claimed by a drainer has another sequence and stays with it).
            self._markers.pop(bucket_id, None)
            await self._js.delete(nc, stored, f"withdrawing messages from bucket {bucket_id}")
            raise BucketGoneError(f"bucket {bucket_id} was destroyed on agent {self.name!r}")
        self._markers[bucket_id] = now
        failed = [r for r in replies if "error" in r]
        if failed:
            raise NatsAgentError(
                f"agent {self.name!r}: {len(failed)} of {len(replies)} message(s) to bucket {bucket_id}"
                " not stored",
                failed[0],
            )
        with contextlib.suppress(Exception):
            await nc.publish(self.notify_subject, bucket_id.encode())

    def _publishes(self, nc: Client, bucket_id: str, messages: list[AgentMessage]) -> list[Request]:
        """New jobs (version 0) go in packs, several to a message; the rest each on its own subject,
        where a push of a known job replaces the copy stored before."""
        bucket = token(bucket_id)
        fresh = [m for m in messages if m.version == 0]
        single = [m for m in messages if m.version != 0]
        names = [token(m.job_id) for m in fresh]
        id_sizes = [len(n) + 1 for n in names]
        sizes = [packs.MEMBER.size + len(m.payload) + n for m, n in zip(fresh, id_sizes, strict=True)]
        requests: list[Request] = []
        for group in packs.split(sizes, id_sizes, nc.max_payload - packs.HEADROOM):
            if len(group) == 1:
                single.append(fresh[group.start])
                continue
            members, ids = fresh[group.start : group.stop], names[group.start : group.stop]
            pack = packs.pack_id(ids)
            payload = packs.encode([(m.payload, 0, m.due_at) for m in members])
            headers = {PACK_IDS: ",".join(ids), MSG_ID: f"{bucket}:{pack}"}
            requests.append((f"{self.root}.{bucket}.{pack}.p", payload, headers))
        for m in single:
            job = token(m.job_id)
            headers = {DUE: repr(m.due_at), VERSION: str(m.version), MSG_ID: f"{bucket}:{job}:{m.version}"}
            requests.append((f"{self.root}.{bucket}.{job}", m.payload, headers))
        return requests

    async def _sync(self, nc: Client, view: View) -> None:
        """Read what the bucket's subjects stored since the last call (caller holds view.lock),
        then write what reading settled (duplicates) and retry writes that failed earlier."""
        await reader.read_new(self._js, nc, view)
        if view.dirty or view.orphans:
            await packs.flush(self._js, nc, view)

    async def _take(
        self, nc: Client, view: View, candidates: list[tuple[str, Entry]], limit: int, visible_at: float
    ) -> list[AgentMessage]:
        """Claim the first `limit` candidates that nobody changed since we read them."""
        candidates.sort(key=lambda c: c[1].due_at)
        taken: list[AgentMessage] = []
        errors: list[dict[str, Any]] = []
        position = 0
        hidden = repr(visible_at)
        while len(taken) < limit and position < len(candidates):
            chunk = candidates[position : position + limit - len(taken)]
            position += len(chunk)
            replies = await self._js.many(
                nc,
                [
                    (
                        view.prefix + token(job_id),
                        entry.payload,
                        {
                            DUE: repr(entry.due_at),
                            VERSION: str(entry.version),
                            VISIBLE: hidden,
                            # A member of a pack moves to its own subject, which must be empty.
                            EXPECT_SUBJECT_SEQ: "0" if entry.pack is not None else str(entry.seq),
                        },
                    )
                    for job_id, entry in chunk
                ],
            )
            for (job_id, entry), reply in zip(chunk, replies, strict=True):
                if "error" in reply and err_code(reply) != WRONG_LAST_SEQUENCE:
                    errors.append(reply)
                    continue
                if entry.pack is not None:
                    settle(view, entry.pack, entry.index)
                    entry.pack = None
                if "error" not in reply:
                    entry.seq = int(reply["seq"])
                    entry.visible_at = visible_at
                    taken.append(AgentMessage(job_id, entry.due_at, entry.version, entry.payload))
                elif view.entries.get(job_id) is entry:
                    # Claimed, replaced or acked elsewhere: forget it; the next read brings back
                    # whatever copy now exists.
                    del view.entries[job_id]
        if errors and not taken:
            raise NatsAgentError(f"agent {self.name!r}: bucket {view.bucket_id}: claim failed", errors[0])
        if view.dirty:
            try:
                await packs.flush(self._js, nc, view)
            except JobMasterError as exc:  # the claims stand; the settlement is written next time
                log.warning("agent %s: bucket %s: %s", self.name, view.bucket_id, exc)
        taken.sort(key=lambda m: m.due_at)
        return taken

    async def claim(
        self, bucket_id: str, limit: int, due_before: float, now: float, visible_at: float
    ) -> list[AgentMessage]:
        nc = self._client()
        view = self._view(bucket_id)
        async with view.lock:
            await self._sync(nc, view)
            candidates = first_due(view, limit, due_before, now)
            try:
                return await self._take(nc, view, candidates, limit, visible_at)
            finally:
                # Claimed ones come back under their new seq (claimable again once their visibility
                # lapses), failed ones under their old one; those that are gone stay out.
                for job_id, entry in candidates:
                    if view.entries.get(job_id) is entry:
                        view.by_due.push(due_item(job_id, entry))

    async def read_due(
        self,
        bucket_id: str,
        limit: int,
        due_before: float,
        now: float,
        visible_at: float,
        after: ReadCursor | None = None,
    ) -> list[AgentMessage]:
        """The view's first due entries, without the guarded re-publish a claim makes per message.
        (`after` is not needed: an ack removes its entries from the view at once.)

        They stay in the due order, so they come back on the next read unless acknowledged first;
        the ack deletes the very sequences read here, or settles them in their pack. A stale entry
        (acknowledged or replaced by another process) is fenced by the master when adopted, and its
        ack finds nothing to delete.
        """
        nc = self._client()
        view = self._view(bucket_id)
        async with view.lock:
            await self._sync(nc, view)
            picked = first_due(view, limit, due_before, now)
            view.lent = picked
            return [AgentMessage(job_id, e.due_at, e.version, e.payload) for job_id, e in picked]

    async def claim_unsaved(
        self, bucket_id: str, limit: int, due_after: float, now: float, visible_at: float
    ) -> list[AgentMessage]:
        """Reads the whole view, unlike `claim`: unsaved jobs are claimed a few times a second, not
        on every job's path, and not at all while no message is due after `due_after`."""
        nc = self._client()
        view = self._view(bucket_id)
        async with view.lock:
            await self._sync(nc, view)
            if limit <= 0 or view.latest_due <= due_after:
                return []
            candidates = [
                (job_id, e)
                for job_id, e in view.entries.items()
                if e.version == 0 and e.due_at > due_after and e.visible_at <= now
            ]
            return await self._take(nc, view, candidates, limit, visible_at)

    async def ack(self, bucket_id: str, job_ids: Sequence[str]) -> None:
        """Remove the copies that were claimed (by sequence); a newer copy pushed since stays.

        Removing by job id, as the SQL agents do, would also delete a newer version that a
        coordinator pushed meanwhile; here it survives and its owner deals with it. A member of a
        pack is settled in the pack's ledger instead, and the pack goes with its last member.
        """
        ids = list(dict.fromkeys(job_ids))
        if not ids:
            return
        nc = self._client()
        view = self._views.get(bucket_id)
        seqs: dict[str, int] = {}
        unknown: list[str] = []
        for job_id in ids:
            entry = view.entries.get(job_id) if view is not None else None
            if entry is None:
                unknown.append(job_id)
            elif entry.pack is not None:
                assert view is not None
                entry.pack.settled.add(entry.index)  # `settle`, inlined: once a job
                view.dirty.add(entry.pack.token)
                del view.entries[job_id]
            else:
                seqs[job_id] = entry.seq
        if unknown:  # never claimed through this process: the copy the stream holds now
            endpoint = f"$JS.API.STREAM.MSG.GET.{self.stream}"
            replies = await self._js.many(
                nc,
                [
                    (endpoint, orjson.dumps({"last_by_subj": self._subject(bucket_id, j)}), None)
                    for j in unknown
                ],
            )
            for job_id, reply in zip(unknown, replies, strict=True):
                if "error" not in reply:
                    seqs[job_id] = int(reply["message"]["seq"])
                elif err_code(reply) not in NOT_FOUND_CODES:
                    raise NatsAgentError(f"agent {self.name!r}: ack in bucket {bucket_id}", reply)
        if seqs:
            await self._js.delete(nc, list(seqs.values()), f"ack in bucket {bucket_id}")
        if view is not None:
            for job_id, seq in seqs.items():
                entry = view.entries.get(job_id)
                if entry is not None and entry.seq == seq:
                    del view.entries[job_id]
            if view.dirty:
                await packs.flush(self._js, nc, view)

    async def next_due_at(self, bucket_id: str, now: float) -> float | None:
        nc = self._client()
        view = self._view(bucket_id)
        async with view.lock:
            await self._sync(nc, view)
            return next_due(view)

    async def count(self, bucket_id: str) -> int:
        """Jobs in the bucket, claimed or not, asked of the server, never of the local index.

        Without packs the server's message count is the answer. With packs, every message of the
        bucket is read once, headers only, into a fresh index: members count as their ledgers leave
        them, and a job stored twice (a push retried with other jobs) counts once.
        """
        nc = self._client()
        prefix = f"{self._marker(bucket_id)}."
        if not await reader.pending(self._js, nc, f"{prefix}*.*"):
            # No pack: one message per job, so the server's count is the answer, without a read.
            return await reader.pending(self._js, nc, f"{prefix}*")
        view = await reader.scan(self._js, nc, View(bucket_id, f"{prefix}>", prefix, headers_only=True))
        return len(view.entries)

    async def find(self, job_id: str) -> AgentMessage | None:
        nc = self._client()
        msg = await self._js.direct(nc, {"seq": 0, "next_by_subj": f"{self.root}.*.{token(job_id)}"})
        if msg is None:
            return await self._find_packed(nc, job_id)
        headers = msg.headers or {}
        return AgentMessage(
            job_id, header_float(headers.get(DUE)), header_int(headers.get(VERSION)), msg.data
        )

    async def _find_packed(self, nc: Client, job_id: str) -> AgentMessage | None:
        """A job that is still a member of a pack: the ids of every pack are read (headers only),
        then the one pack that names it. A lookup by hand, never on a job's path."""
        wanted = token(job_id)
        found: list[tuple[int, Msg]] = []
        await reader.scan(
            self._js,
            nc,
            View("(packs)", f"{self.root}.*.*.p", f"{self.root}.", headers_only=True, collect=found),
        )
        for seq, msg in found:
            ids = (msg.headers or {}).get(PACK_IDS, "").split(",")
            if wanted not in ids:
                continue
            index = ids.index(wanted)
            ledger = await packs.read_ledger(self._js, nc, f"{msg.subject[:-2]}.s", len(ids))
            if ledger is not None and index in ledger[1]:
                continue
            stored = await self._js.direct(nc, {"seq": seq})
            members = packs.decode(stored.data, len(ids)) if stored is not None else None
            if members is not None:
                payload, version, due = members[index]
                return AgentMessage(job_id, due, version, payload)
        return None
