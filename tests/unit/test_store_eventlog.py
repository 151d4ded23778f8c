"""EventLog: add/get, ranges, bad input, malformed ops skipped."""

from __future__ import annotations

import pytest

from ipfs_log import CID, EntryNotFoundError
from stores import Event, EventLog, InvalidOperationError, KeyNotFoundError
from tests.conftest import ALICE, BOB


@pytest.fixture
def events(log_factory) -> EventLog:
    return EventLog(log_factory())


def test_add_and_get(events):
    cid = events.add({"hello": "world"})
    assert isinstance(cid, CID)
    assert events.log.get(cid).payload == {"op": "ADD", "key": None, "value": {"hello": "world"}}
    assert events.get(cid) == {"hello": "world"}
    assert events[cid] == {"hello": "world"}
    assert cid in events
    assert len(events) == 1


def test_get_missing(events):
    other = CID.for_block(b"\xa0")
    assert events.get(other) is None
    assert events.get(other, "d") == "d"
    assert other not in events
    assert "x" not in events
    with pytest.raises(KeyNotFoundError):
        events[other]


def test_all_and_iter(events):
    cids = [events.add(i) for i in range(5)]
    assert events.all() == [Event(c, i) for i, c in enumerate(cids)]
    assert list(events) == events.all()


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        ({}, [0, 1, 2, 3, 4, 5]),
        ({"gt": 1}, [2, 3, 4, 5]),
        ({"gte": 1}, [1, 2, 3, 4, 5]),
        ({"lt": 3}, [0, 1, 2]),
        ({"lte": 3}, [0, 1, 2, 3]),
        ({"gt": 1, "lt": 4}, [2, 3]),
        ({"gte": 1, "lte": 4}, [1, 2, 3, 4]),
        ({"amount": 2}, [0, 1]),
        ({"amount": 0}, []),
        ({"amount": -1}, []),
        ({"reverse": True}, [5, 4, 3, 2, 1, 0]),
        ({"reverse": True, "amount": 2}, [5, 4]),
        ({"reverse": True, "lt": 4, "amount": 2}, [3, 2]),
        ({"gt": 4, "lt": 2}, []),
    ],
)
def test_ranges(events, bounds, expected):
    cids = [events.add(i) for i in range(6)]
    named = {k: (cids[v] if k in ("gt", "gte", "lt", "lte") else v) for k, v in bounds.items()}
    assert [e.value for e in events.iter(**named)] == expected


def test_range_bound_not_in_the_log(events):
    events.add(1)
    with pytest.raises(EntryNotFoundError):
        list(events.iter(gt=CID.for_block(b"\xa0")))


def test_amount_counts_events_not_skipped_entries(events):
    events.add(0)
    events.log.append("garbage")
    events.add(1)
    events.log.append({"op": "PUT", "key": "k", "value": 1})
    events.add(2)
    assert len(events) == 3
    assert [e.value for e in events.iter(amount=2)] == [0, 1]
    assert [e.value for e in events.iter(reverse=True, amount=2)] == [2, 1]
    garbage = events.log.values()[1].cid
    assert garbage not in events
    assert events.get(garbage) is None
    assert [e.value for e in events.iter(gt=garbage)] == [1, 2]


@pytest.mark.parametrize("value", [(1,), {1: 1}, {"a": object()}, float("inf")])
def test_values_must_be_ipld(events, value):
    with pytest.raises(InvalidOperationError, match="event value"):
        events.add(value)
    batch = events.batch()
    batch.add(1)
    with pytest.raises(InvalidOperationError):
        batch.add(value)
    assert len(events.log) == 0


def test_batch(events):
    with events.batch() as batch:
        for i in range(5):
            batch.add(i)
    assert [e.value for e in events] == [0, 1, 2, 3, 4]
    assert [e.cid for e in events] == [e.cid for e in batch.entries]


def test_joined_events_interleave_in_log_order(log_factory):
    alice, bob = EventLog(log_factory(ALICE)), EventLog(log_factory(BOB))
    alice.add("a1")
    bob.add("b1")
    bob.add("b2")
    alice.add("a2")
    alice.join(bob)
    bob.join(alice)
    assert alice.all() == bob.all() == EventLog(alice.log).all()
    assert len(alice) == len(bob) == 4


def test_checkpoint_round_trip(events):
    events.add(1)
    events.log.append("junk")
    events.add(2)
    restored = EventLog(events.log, checkpoint=events.checkpoint())
    assert len(restored) == 2
    assert restored.all() == events.all()
