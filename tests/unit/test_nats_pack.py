"""The pure part of NATS packs: the binary layout and the ledger's text (no server needed)."""

from __future__ import annotations

from jobmaster.agents.nats import packs as nats_pack


def test_members_round_trip_and_odd_bytes_are_no_pack() -> None:
    members = [(b'{"a": 1}', 0, 1.5), (b"", 3, 2.25), (bytes(range(256)), 0, 1e9)]
    data = nats_pack.encode(members)
    assert nats_pack.decode(data, 3) == members
    assert nats_pack.decode(data, 2) is None  # the ids name another number of jobs
    assert nats_pack.decode(data[:-1], 3) is None  # cut short
    assert nats_pack.decode(b"\xff\x00 not a pack", 1) is None
    assert nats_pack.decode(b"", 0) == []


def test_a_pack_is_named_by_its_members() -> None:
    assert nats_pack.pack_id(["a", "b"]) == nats_pack.pack_id(["a", "b"])
    assert nats_pack.pack_id(["a", "b"]) != nats_pack.pack_id(["b", "a"])


def test_split_keeps_groups_within_the_byte_member_and_header_limits() -> None:
    assert nats_pack.split([10] * 5, [1] * 5, 30) == [range(0, 3), range(3, 5)]
    assert nats_pack.split([50, 10, 10], [1] * 3, 30) == [range(0, 1), range(1, 3)]  # too large: alone
    count = nats_pack.MAX_MEMBERS * 2 + 1
    many = nats_pack.split([1] * count, [1] * count, 10**9)
    assert [len(g) for g in many] == [nats_pack.MAX_MEMBERS, nats_pack.MAX_MEMBERS, 1]
    long_ids = nats_pack.split([1] * 10, [nats_pack.MAX_IDS_BYTES // 4] * 10, 10**9)
    assert [len(g) for g in long_ids] == [4, 4, 2]
    assert nats_pack.split([], [], 10) == []


def test_ledger_ranges_round_trip_and_ignore_odd_text() -> None:
    settled = {0, 1, 2, 3, 7, 9, 10, 11, 40}
    text = nats_pack.ranges(settled)
    assert text == "0-3,7,9-11,40"
    assert nats_pack.parse_ranges(text, 100) == settled
    assert nats_pack.parse_ranges(text, 10) == {0, 1, 2, 3, 7, 9}  # only members that exist
    assert nats_pack.parse_ranges("x, 2 ,-1,5-a,,4-6", 100) == {2, 4, 5, 6}
    assert nats_pack.ranges([]) == "" and nats_pack.parse_ranges("", 5) == set()
