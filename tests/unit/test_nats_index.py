"""The NATS agent's per-bucket index: due order, stale and hidden entries, pack settlement (no server)."""

from __future__ import annotations

import math

from jobmaster.agents.base import NEXT_DUE_SCAN
from jobmaster.agents.nats.index import (
    DueOrder,
    Entry,
    Pack,
    View,
    due_item,
    enter,
    first_due,
    merge,
    next_due,
    settle,
)


def _view() -> View:
    return View("b", "jm.x.b.>", "jm.x.b.")


def _entry(seq: int, due: float, visible: float = 0.0, pack: Pack | None = None, index: int = 0) -> Entry:
    return Entry(seq, due, 0, visible, f"job at {due}".encode(), pack, index)


def test_due_order_pops_earliest_first_whatever_the_arrival_order() -> None:
    order = DueOrder()
    dues = [5.0, 1.0, 3.0, 3.0, 9.0, 0.5, 7.0, 2.0]
    for seq, due in enumerate(dues, start=1):
        order.push((due, seq, 0, f"j{seq}"))
    popped = []
    while order:
        popped.append(order.pop())
    assert [item[0] for item in popped] == sorted(dues)
    # Equal due times come out in arrival (sequence) order.
    assert [item[1] for item in popped if item[0] == 3.0] == [3, 4]


def test_pop_due_stops_at_the_first_item_not_due() -> None:
    order = DueOrder()
    for seq, due in enumerate([1.0, 4.0, 2.0, 8.0], start=1):
        order.push((due, seq, 0, f"j{seq}"))
    assert order.pop_due(0.5) is None
    taken = [order.pop_due(4.0) for _ in range(4)]
    assert [t[0] if t else None for t in taken] == [1.0, 2.0, 4.0, None]
    assert order.first() == (8.0, 4, 0, "j4")  # still there


def test_pack_members_of_one_due_time_come_out_in_their_order() -> None:
    order = DueOrder()
    for index in reversed(range(5)):  # out of order: they go to the heap
        order.push((1.0, 7, index, f"m{index}"))
    order.push((0.0, 9, 0, "early"))
    assert [order.pop()[3] for _ in range(6)] == ["early", "m0", "m1", "m2", "m3", "m4"]


def test_first_due_takes_visible_entries_and_drops_stale_ones() -> None:
    view = _view()
    enter(view, "a", _entry(1, 1.0))
    enter(view, "b", _entry(2, 2.0, visible=100.0))  # claimed, hidden until 100
    enter(view, "c", _entry(3, 3.0))
    enter(view, "d", _entry(4, 50.0))  # not due yet
    enter(view, "c", _entry(5, 0.5))  # a newer copy of c: its old item is stale
    picked = first_due(view, 10, due_before=10.0, now=10.0)
    assert [(job_id, e.seq) for job_id, e in picked] == [("c", 5), ("a", 1)]
    # The hidden entry went back; it is handed out once visible.
    assert [job_id for job_id, _ in first_due(view, 10, due_before=10.0, now=100.0)] == ["b"]
    # Taken ones are off the order until the caller puts them back.
    assert first_due(view, 10, due_before=10.0, now=100.0) == []


def test_first_due_honours_its_limit_and_keeps_the_rest() -> None:
    view = _view()
    for i in range(5):
        enter(view, f"j{i}", _entry(i + 1, float(i)))
    assert [j for j, _ in first_due(view, 2, due_before=10.0, now=0.0)] == ["j0", "j1"]
    assert [j for j, _ in first_due(view, 10, due_before=10.0, now=0.0)] == ["j2", "j3", "j4"]


def test_lent_entries_come_back_unless_acknowledged() -> None:
    view = _view()
    enter(view, "a", _entry(1, 1.0))
    enter(view, "b", _entry(2, 2.0))
    view.lent = first_due(view, 10, due_before=10.0, now=0.0)
    del view.entries["a"]  # acknowledged meanwhile
    assert [j for j, _ in first_due(view, 10, due_before=10.0, now=0.0)] == ["b"]
    assert view.lent == []


def test_next_due_is_the_earliest_of_due_and_visible_time() -> None:
    view = _view()
    assert next_due(view) is None
    enter(view, "a", _entry(1, 1.0, visible=30.0))
    enter(view, "b", _entry(2, 20.0))
    assert next_due(view) == 20.0
    enter(view, "b", _entry(3, 40.0))  # replaced: the item of seq 2 is stale
    assert next_due(view) == 30.0
    # It only looks: a read still finds every entry.
    assert {j for j, _ in first_due(view, 10, due_before=math.inf, now=math.inf)} == {"a", "b"}


def test_next_due_looks_at_the_first_entries_only() -> None:
    view = _view()
    for i in range(NEXT_DUE_SCAN):
        enter(view, f"j{i}", _entry(i + 1, float(i), visible=1000.0))
    enter(view, "late", _entry(NEXT_DUE_SCAN + 1, 500.0))
    assert next_due(view) == 1000.0  # the bound, not 500: later entries are not scanned


def test_latest_due_is_an_upper_bound() -> None:
    view = _view()
    assert view.latest_due == -math.inf
    enter(view, "a", _entry(1, 7.0))
    enter(view, "b", _entry(2, 3.0))
    assert view.latest_due == 7.0


def test_settling_members_marks_the_pack_for_writing() -> None:
    view = _view()
    pack = Pack("p1", 10, ["a", "b", "c"])
    view.packs["p1"] = pack
    settle(view, pack, 1)
    assert pack.settled == {1} and view.dirty == {"p1"} and not pack.done
    view.dirty.clear()
    settle(view, pack, 1)  # once is enough
    assert view.dirty == set()
    settle(view, pack, 0)
    settle(view, pack, 2)
    assert pack.done


def test_merging_a_ledger_forgets_members_settled_elsewhere() -> None:
    view = _view()
    pack = Pack("p1", 10, ["a", "b", "c"])
    for index, job_id in enumerate(pack.ids):
        enter(view, job_id, _entry(10, 1.0, pack=pack, index=index))
    enter(view, "c", _entry(11, 1.0))  # c was claimed onto its own subject: not the pack's entry
    merge(view, pack, {0, 2})
    assert set(view.entries) == {"b", "c"} and view.entries["c"].pack is None
    assert pack.settled == {0, 2} and view.dirty == set()  # nothing new of ours to write
    merge(view, pack, {1})
    assert pack.done and view.dirty == {"p1"}  # the last member: the pack can go
    assert [j for j, _ in first_due(view, 10, due_before=10.0, now=0.0)] == ["c"]


def test_an_item_names_due_time_sequence_and_place_in_the_pack() -> None:
    pack = Pack("p", 4, ["x", "y"])
    assert due_item("y", _entry(4, 2.5, pack=pack, index=1)) == (2.5, 4, 1, "y")
