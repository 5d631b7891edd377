"""The NATS agent's wire helpers that need no server: the nats-py version check, the fast header
parser against nats-py's own, and the reply subjects of deliveries."""

from __future__ import annotations

import pytest
from nats.aio.client import Client

from jobmaster.agents.nats import wire

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
