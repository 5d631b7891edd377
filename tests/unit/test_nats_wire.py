"""The NATS agent's wire helpers that need no server: the nats-py version check, the fast header
parser against nats-py's own, and the reply subjects of deliveries."""

from __future__ import annotations

from typing import Any

import pytest
from nats.aio.client import Client

from jobmaster.agents.nats import wire
from jobmaster.runtime.startup import can_wait_for

BLOCKS = [
    b"NATS/1.0\r\nJm-Due: 1733400000.25\r\nJm-Ver: 3\r\nNats-Msg-Id: b:j:3\r\n\r\n",
    b"NATS/1.0 404 No Messages\r\n\r\n",
    b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 7\r\nNats-Pending-Bytes: 0\r\n\r\n",
    b"NATS/1.0 503\r\n\r\n",
    b"NATS/1.0\r\nJm-Ids: a,b,c\r\nNats-Sequence: 12\r\nNats-Subject: jm.x.b.p1.s\r\n\r\n",
]


def test_the_private_path_is_taken_only_for_checked_versions() -> None:
    for version in wire.PRIVATE_API_VERSIONS:
        assert wire.private_api_known(version)
    assert not wire.private_api_known("2.10.0")
    assert not wire.private_api_known("")
    assert wire.private_api_known(wire._installed_version()) == wire.PRIVATE_API


@pytest.mark.parametrize("block", BLOCKS)
async def test_the_fast_header_parser_reads_what_nats_py_reads(block: bytes) -> None:
    fast = await wire._FastHeaderClient()._process_headers(block)
    assert fast
    assert fast == await Client()._process_headers(block)


async def test_folded_headers_go_to_nats_py() -> None:
    block = b"NATS/1.0\r\nJm-Due: 1\r\n continued\r\n\r\n"
    assert await wire._FastHeaderClient()._process_headers(block) == await Client()._process_headers(block)


def test_a_delivery_reply_names_sequences_and_pending() -> None:
    assert wire.delivery("$JS.ACK.S.C.1.42.7.1733400000000000000.5") == (42, 7, 5)
    assert wire.delivery("$JS.ACK.dom.acc.S.C.1.42.7.1733400000000000000.5.tok") == (42, 7, 5)
    assert wire.delivery(None) == (0, 0, 0)
    assert wire.delivery("_INBOX.x") == (0, 0, 0)


@pytest.mark.parametrize(
    ("reply", "transient"),
    [
        (wire.status_reply(None), True),  # no reply in time: no leader to answer yet
        ({"error": {"code": 503, "err_code": 0, "description": "no responders"}}, True),
        ({"error": {"code": 503, "err_code": 10008, "description": "temporarily unavailable"}}, True),
        ({"error": {"code": 500, "err_code": 10009, "description": "cannot handle request"}}, True),
        ({"error": {"code": 503, "err_code": 10039, "description": "not enabled for account"}}, False),
        ({"error": {"code": 400, "err_code": 10058, "description": "stream name in use"}}, False),
        ({"error": {"code": 500, "err_code": 0, "description": "unreadable reply"}}, False),
    ],
)
def test_an_agent_error_keeps_its_codes_and_only_a_leader_election_is_transient(
    reply: dict[str, Any], transient: bool
) -> None:
    error = wire.NatsAgentError("agent 'a': stream S", reply)
    assert (error.code, error.err_code) == (reply["error"]["code"], reply["error"]["err_code"])
    assert error.transient is transient
    assert can_wait_for(error) is transient
    assert str(error).startswith("agent 'a': stream S: ") and wire.describe(reply) in str(error)


def test_an_agent_error_without_a_reply_is_not_transient() -> None:
    error = wire.NatsAgentError("agent 'a': deliveries lost")
    assert (error.code, error.err_code, error.transient) == (0, 0, False)
    assert not can_wait_for(error)
