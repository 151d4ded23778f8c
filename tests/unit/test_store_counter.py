"""Counter: a PN-counter; amounts must be ints (not bools)."""

from __future__ import annotations

from typing import Any

import pytest

from stores import Counter, InvalidOperationError
from tests.conftest import ALICE, BOB, CAROL


@pytest.fixture
def counter(log_factory) -> Counter:
    return Counter(log_factory())


def test_starts_at_zero(counter):
    assert counter.value == 0
    assert counter.totals == {}


def test_inc_dec(counter):
    cid = counter.inc()
    assert counter.log.get(cid).payload == {"op": "INC", "value": 1}
    counter.inc(10)
    cid = counter.dec(3)
    assert counter.log.get(cid).payload == {"op": "INC", "value": -3}
    counter.dec()
    counter.inc(-2)
    counter.inc(0)
    assert counter.value == 5
    assert counter.totals == {ALICE.public_key: 5}
    assert "value=5" in repr(counter)


@pytest.mark.parametrize("amount", [True, False, 1.0, "1", None, [1], 2**64 + 1, -(2**64) - 1])
def test_amount_must_be_an_int_in_range(counter, amount):
    with pytest.raises(InvalidOperationError):
        counter.inc(amount)
    with pytest.raises(InvalidOperationError):
        counter.dec(amount)
    batch = counter.batch()
    batch.inc(1)
    with pytest.raises(InvalidOperationError):
        batch.dec(amount)
    with pytest.raises(InvalidOperationError):
        batch.inc(amount)
    assert len(batch) == 1
    assert len(counter.log) == 0


def test_extremes(counter):
    counter.inc(2**64 - 1)
    counter.dec(2**64)
    counter.inc(-(2**64))
    assert counter.value == 2**64 - 1 - 2**64 - 2**64
    with pytest.raises(InvalidOperationError):
        counter.dec(-(2**64))  # would be +2**64


def test_batch(counter):
    with counter.batch() as batch:
        for _ in range(10):
            batch.inc()
        batch.dec(4)
    assert counter.value == 6
    assert len(batch.entries) == 11


def test_concurrent_writers_sum(log_factory):
    a, b, c = (Counter(log_factory(i)) for i in (ALICE, BOB, CAROL))
    a.inc(1)
    b.inc(10)
    c.dec(100)
    a.join(b)
    c.join(a)
    a.join(c)
    b.join(c)
    assert a.value == b.value == c.value == -89
    assert c.totals == {ALICE.public_key: 1, BOB.public_key: 10, CAROL.public_key: -100}


@pytest.mark.parametrize(
    "payload",
    [
        None,
        {"op": "INC"},
        {"op": "INC", "value": True},
        {"op": "INC", "value": 1.5},
        {"op": "INC", "value": "3"},
    ],
)
def test_malformed_joined_ops_are_ignored(log_factory, payload):
    counter = Counter(log_factory(ALICE))
    counter.inc(2)
    bad = log_factory(BOB)
    bad.append(payload)
    counter.join(bad)
    assert counter.value == 2
    assert Counter(counter.log).value == 2


def test_checkpoint_round_trip_with_huge_totals(counter):
    for _ in range(3):
        counter.inc(2**64 - 1)
    counter.dec(5)
    checkpoint = counter.checkpoint()
    restored = Counter(counter.log, checkpoint=checkpoint)
    assert restored.value == counter.value == 3 * (2**64 - 1) - 5
    assert restored.totals == counter.totals


def test_bad_counter_checkpoint(counter):
    from stores import InvalidCheckpointError

    counter.inc()
    checkpoint = counter.checkpoint()
    assert isinstance(checkpoint, dict)
    states: list[Any] = [[[b"k"]], [[b"k", True]], [["k", 1]], [[b"k", "x"]], {"a": 1}, ["x"]]
    for state in states:
        with pytest.raises(InvalidCheckpointError):
            Counter(counter.log, checkpoint={**checkpoint, "state": state})
