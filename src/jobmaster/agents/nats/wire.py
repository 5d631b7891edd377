"""The NATS agent's wire: JetStream requests multiplexed over one inbox, replies, headers.

nats-py's own JetStream API waits for each reply in turn; here a batch of requests (2,000 acks, a
push of packs) is written at once and its replies are routed back by index through one wildcard
subscription (`Inbox`), so a batch costs one round trip. Raw `$JS.API.*` requests go through
`JetStream`, which names the agent and its URL (without credentials) in every error.

Two details of nats-py are private and used only where this module was checked against the
installed nats-py version (`PRIVATE_API`): a faster header parser (`_FastHeaderClient`) and the
server's INFO as the client read it (`Client._server_info`). Any other nats-py version takes the
public path: nats-py's own header parsing, and the INFO read by a probe of the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import itertools
from collections.abc import Sequence
from typing import Any

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from jobmaster.errors import StoreError, UnavailableError

DUE = "Jm-Due"
VERSION = "Jm-Ver"
VISIBLE = "Jm-Vis"
EXPECT_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
MSG_ID = "Nats-Msg-Id"
SEQUENCE = "Nats-Sequence"
#: A pack's member ids (subject tokens, comma-separated), and a ledger's settled member indices.
PACK_IDS = "Jm-Ids"
SETTLED = "Jm-Settled"

#: JetStream error code: the subject's last sequence is not the expected one.
WRONG_LAST_SEQUENCE = 10071
NOT_FOUND_CODES = (10059, 10014, 10037, 10043)  # stream, consumer, message, sequence not found
#: A cluster between leaders: "JetStream system temporarily unavailable", "JetStream cluster can not
#: handle request". With no JetStream error code, a reply's 408 (none came in time: no leader yet)
#: and 503 (no responders: the stream's leader is gone) mean the same.
TRANSIENT_ERR_CODES = (10008, 10009)
TRANSIENT_CODES = (408, 503)
#: Requests in flight at once per batch (a batch of 2,000 acks goes out as two rounds).
WINDOW = 1000
API_TIMEOUT = 5.0

#: nats-py versions whose private `Client._process_headers` and `Client._server_info` were checked
#: against this module (the version pinned in pyproject.toml).
PRIVATE_API_VERSIONS = ("2.9.0",)
#: How long the public path's probe of the server's INFO may take.
PROBE_TIMEOUT = 2.0

#: A request to send: subject, payload and headers.
Request = tuple[str, bytes, dict[str, str] | None]


class NatsUnavailableError(UnavailableError):
    """The NATS server cannot be reached (the message names the URL, without credentials)."""


class NatsAgentError(StoreError):
    """JetStream refused a request: `what` was asked, `reply` the API's error reply, if any.

    The reply's `code` and `err_code` stay on the error, and decide `transient`: the answers of a
    cluster electing a leader, which start-up waits for.
    """

    def __init__(self, what: str, reply: dict[str, Any] | None = None) -> None:
        super().__init__(what if reply is None else f"{what}: {describe(reply)}")
        error = reply.get("error") if reply is not None else None
        self.code = int(error.get("code") or 0) if isinstance(error, dict) else 0
        self.err_code = err_code(reply) if reply is not None else 0
        self.transient = self.err_code in TRANSIENT_ERR_CODES or (
            self.err_code == 0 and self.code in TRANSIENT_CODES
        )


def private_api_known(version: str) -> bool:
    """Whether this nats-py version's private details are the ones this module relies on."""
    return version in PRIVATE_API_VERSIONS and hasattr(Client, "_process_headers")


def _installed_version() -> str:
    try:
        return importlib.metadata.version("nats-py")
    except importlib.metadata.PackageNotFoundError:
        return ""


#: True: the fast header parser and the client's own copy of the server INFO; False: public API only.
PRIVATE_API = private_api_known(_installed_version())


# ---- in-flight replies ---------------------------------------------------------------------------


class Batch:
    """Replies to `size` requests sent at once, by index."""

    def __init__(self, size: int) -> None:
        self.replies: list[Msg | None] = [None] * size
        self.left = size
        self.aborted = False
        self.done = asyncio.get_running_loop().create_future()
        if size == 0:
            self.done.set_result(None)

    def add(self, index: str, msg: Msg) -> None:
        try:
            i = int(index)
        except ValueError:
            return
        if 0 <= i < len(self.replies) and self.replies[i] is None:
            self.replies[i] = msg
            self.left -= 1
            if self.left == 0 and not self.done.done():
                self.done.set_result(None)

    def abort(self) -> None:
        """The connection dropped: replies still missing will never come."""
        self.aborted = True
        if not self.done.done():
            self.done.set_result(None)


class Pull:
    """The messages one no-wait pull request returns, up to its terminating status."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.messages: list[Msg] = []
        self.status: str | None = None
        self.description = ""
        self.aborted = False
        self.done = asyncio.get_running_loop().create_future()

    def add(self, msg: Msg) -> None:
        if not self.done.done():
            self.messages.append(msg)
            if len(self.messages) >= self.batch:
                self.done.set_result(None)

    def finish(self, msg: Msg) -> None:
        """A status message on the pull's own reply subject: 404/408 end it, 100 is a heartbeat."""
        status = msg.headers.get("Status") if msg.headers else None
        if status == "100" or self.done.done():
            return
        self.status = status or "000"
        self.description = str(msg.headers.get("Description", "")) if msg.headers else ""
        self.done.set_result(None)

    def abort(self) -> None:
        self.aborted = True
        if not self.done.done():
            self.done.set_result(None)


class Inbox:
    """One wildcard subscription that routes replies to the call waiting for them."""

    def __init__(self) -> None:
        self.prefix = ""
        self._waiting: dict[str, Batch] = {}
        self._ids = itertools.count(1)
        self._sub: Subscription | None = None

    async def start(self, nc: Client) -> None:
        self.prefix = nc.new_inbox()
        self._sub = await nc.subscribe(
            f"{self.prefix}.>", cb=self._on_msg, pending_msgs_limit=0, pending_bytes_limit=0
        )

    async def stop(self) -> None:
        self.abort()
        if self._sub is not None:
            sub, self._sub = self._sub, None
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    def open(self, waiter: Batch) -> str:
        key = str(next(self._ids))
        self._waiting[key] = waiter
        return key

    def close(self, key: str) -> None:
        self._waiting.pop(key, None)

    def abort(self) -> None:
        for waiter in list(self._waiting.values()):
            waiter.abort()

    async def _on_msg(self, msg: Msg) -> None:
        key, _, index = msg.subject[len(self.prefix) + 1 :].partition(".")
        waiter = self._waiting.get(key)
        if waiter is not None:
            waiter.add(index, msg)


#: What a status without a description of its own means to a JetStream request.
STATUS_MEANING = {"503": "no responders: JetStream is not available"}


def status_reply(msg: Msg | None) -> dict[str, Any]:
    """A reply that is only a status (none in time: 408; a `Status` header) as an API error entry."""
    if msg is None:
        return {"error": {"code": 408, "err_code": 0, "description": "no reply in time"}}
    headers = msg.headers or {}
    status = headers.get("Status", "")
    description = headers.get("Description") or STATUS_MEANING.get(status, f"status {status}")
    code = int(status) if status.isdigit() else 500
    return {"error": {"code": code, "err_code": 0, "description": description}}


def api_reply(msg: Msg | None) -> dict[str, Any]:
    """A JetStream API reply as a dict; a missing, status-only or unreadable one as an error entry."""
    if msg is None or (msg.headers and msg.headers.get("Status") == "503"):
        return status_reply(msg)
    try:
        value = orjson.loads(msg.data)
    except orjson.JSONDecodeError:
        return {"error": {"code": 500, "err_code": 0, "description": f"unreadable reply {msg.data[:80]!r}"}}
    return value if isinstance(value, dict) else {"error": {"code": 500, "err_code": 0}}


def err_code(reply: dict[str, Any]) -> int:
    error = reply.get("error")
    return int(error.get("err_code") or 0) if isinstance(error, dict) else 0


def describe(reply: dict[str, Any]) -> str:
    error = reply.get("error")
    if isinstance(error, dict):
        return f"{error.get('description', 'error')} (code {error.get('code')}/{error.get('err_code')})"
    return "unknown error"


def header_float(value: str | None) -> float:
    if not value:
        return 0.0
    try:
        return float(value)
    except ValueError:
        return 0.0


def header_int(value: str | None) -> int:
    if not value:
        return 0
    try:
        return int(value)
    except ValueError:
        return 0


def delivery(reply: str | None) -> tuple[int, int, int]:
    """Stream sequence, consumer sequence and messages still pending, from a delivery's reply.

    `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`, or the longer form with
    a domain and account hash in front of the stream name.
    """
    if not reply:
        return 0, 0, 0
    tokens = reply.split(".")
    if len(tokens) == 9:
        return header_int(tokens[5]), header_int(tokens[6]), header_int(tokens[8])
    if len(tokens) >= 11:
        return header_int(tokens[7]), header_int(tokens[8]), header_int(tokens[10])
    return 0, 0, 0


class _FastHeaderClient(Client):
    """nats-py's client, with a fast path for plain header blocks.

    nats-py parses every header block with the standard library's email parser, a quarter of this
    agent's CPU time under load (and a pull's closing status, one a read, cost 3% of a worker's). A
    block of `Name: value` lines after `NATS/1.0`, with a status and description on that first line
    or not, is all JetStream sends; anything else (folded lines) goes to nats-py.
    """

    async def _process_headers(self, headers: bytes) -> dict[str, str] | None:
        if headers and headers.startswith(b"NATS/1.0") and headers.isascii():
            first, *lines = headers.decode("ascii").split("\r\n")
            parsed: dict[str, str] = {}
            status, _, description = first[8:].strip().partition(" ")
            if status.isdigit():
                parsed["Status"] = status
                if description:
                    parsed["Description"] = description.strip()
            elif status:
                return await super()._process_headers(headers)
            for line in lines:
                if not line:
                    continue
                name, colon, value = line.partition(":")
                if not colon or line[0] in " \t":
                    break
                parsed[name.strip()] = value.strip()
            else:
                return parsed or None
        return await super()._process_headers(headers)


def new_client() -> Client:
    """A nats-py client, with the fast header path where the installed nats-py allows it."""
    return _FastHeaderClient() if PRIVATE_API else Client()


class JetStream:
    """Raw JetStream requests on one stream, multiplexed over one inbox."""

    def __init__(self, name: str, safe_url: str, stream: str) -> None:
        #: The agent's name and its URL without credentials, for error messages.
        self.name = name
        self.safe_url = safe_url
        self.stream = stream
        self.inbox = Inbox()

    async def server_info(self, nc: Client) -> dict[str, Any]:
        """The INFO of the server `nc` is connected to (`tls_required`, `jetstream`, ...)."""
        if PRIVATE_API:
            info = getattr(nc, "_server_info", None)
            return info if isinstance(info, dict) else {}
        return await self._probe_info(nc)

    async def _probe_info(self, nc: Client) -> dict[str, Any]:
        """The INFO line a NATS server sends first on every connection, read on a connection of
        our own and closed at once: the protocol's public part, unlike nats-py's copy of it."""
        url = nc.connected_url
        if url is None or url.hostname is None:
            raise NatsUnavailableError(f"agent {self.name!r}: not connected to NATS at {self.safe_url}")
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                reader, writer = await asyncio.open_connection(url.hostname, url.port or 4222)
                try:
                    line = await reader.readline()
                finally:
                    writer.close()
                    with contextlib.suppress(Exception):
                        await writer.wait_closed()
        except (OSError, TimeoutError) as exc:
            raise NatsUnavailableError(
                f"agent {self.name!r}: cannot read the server INFO of NATS at {self.safe_url}:"
                f" {type(exc).__name__} {exc}".rstrip()
            ) from None
        verb, _, body = line.partition(b" ")
        try:
            info = orjson.loads(body) if verb == b"INFO" else None
        except orjson.JSONDecodeError:
            info = None
        if not isinstance(info, dict):
            raise NatsAgentError(f"agent {self.name!r}: NATS at {self.safe_url} sent no INFO: {line[:80]!r}")
        return info

    async def api(self, nc: Client, endpoint: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        payload = orjson.dumps(body) if body is not None else b""
        [reply] = await self.many(nc, [(f"$JS.API.{endpoint}", payload, None)])
        return reply

    async def many(self, nc: Client, requests: Sequence[Request]) -> list[dict[str, Any]]:
        """JetStream API requests or publishes, sent at once; replies in the same order."""
        return [api_reply(msg) for msg in await self.send(nc, requests)]

    async def send(self, nc: Client, requests: Sequence[Request]) -> list[Msg | None]:
        """Send requests (subject, payload, headers) without waiting in between; raw replies.

        A reply missing after API_TIMEOUT is None. If the connection drops meanwhile, raises
        NatsUnavailableError at once: some of the requests may have taken effect.
        """
        replies: list[Msg | None] = []
        for start in range(0, len(requests), WINDOW):
            chunk = requests[start : start + WINDOW]
            batch = Batch(len(chunk))
            key = self.inbox.open(batch)
            try:
                reply_to = f"{self.inbox.prefix}.{key}."
                for i, (subject, payload, headers) in enumerate(chunk):
                    await nc.publish(subject, payload, reply=f"{reply_to}{i}", headers=headers)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(batch.done), API_TIMEOUT)
            finally:
                self.inbox.close(key)
            if batch.aborted:
                raise NatsUnavailableError(
                    f"agent {self.name!r}: connection to NATS at {self.safe_url} lost"
                    f" with {batch.left} of {len(chunk)} request(s) unanswered"
                )
            replies.extend(batch.replies)
        return replies

    async def direct(self, nc: Client, request: dict[str, Any]) -> Msg | None:
        """One stored message read from any replica (`DIRECT.GET`); None if there is none."""
        body = orjson.dumps(request)
        [msg] = await self.send(nc, [(f"$JS.API.DIRECT.GET.{self.stream}", body, None)])
        status = msg.headers.get("Status") if msg is not None and msg.headers else None
        if status == "404":
            return None
        if msg is None or status:
            raise NatsAgentError(f"agent {self.name!r}: read of {request}", status_reply(msg))
        return msg

    async def delete(self, nc: Client, seqs: Sequence[int], what: str) -> list[bool]:
        """Delete messages by sequence; False for one already gone (replaced, claimed, acked).

        Never a purge by subject: on nats-server 2.9 a filtered purge moves the read position of
        consumers past messages they have not delivered yet, which would hide those messages from
        this agent's readers. Deleting one sequence leaves every consumer's position intact.
        """
        endpoint = f"$JS.API.STREAM.MSG.DELETE.{self.stream}"
        replies = await self.many(
            nc, [(endpoint, orjson.dumps({"seq": s, "no_erase": True}), None) for s in seqs]
        )
        done = []
        for reply in replies:
            if "error" in reply and err_code(reply) not in NOT_FOUND_CODES:
                raise NatsAgentError(f"agent {self.name!r}: {what}", reply)
            done.append("error" not in reply)
        return done
