"""Join is a semilattice merge: idempotent, commutative, associative; replicas converge under gossip.

``Log.join`` grows a log in place, so each law is stated over fresh logs: :func:`merged` builds a new
empty replica and joins the given logs into it, in the given order.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from ipfs_log import CID, IPLDKind, Log, MemoryBlockStore
from tests.conftest import ALICE
from tests.property.strategies import REPLICAS, Scenario, int_values, new_replica, payloads, scenarios, state


def merged(*logs: Log) -> Log:
    """A new replica (own store) that has joined ``logs`` one after the other."""
    log = new_replica(ALICE, MemoryBlockStore())
    for other in logs:
        log.join(other)
    return log


def check_well_formed(log: Log) -> None:
    """Log order is sorted by (time, key, CID bytes), the clock rule holds, heads are the unnamed."""
    entries = list(log)
    assert len(entries) == len(log)
    keys = [(e.time, e.key, bytes(e.cid)) for e in entries]
    assert [e.sort_key for e in entries] == keys
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    named: set[CID] = set()
    for e in entries:
        assert e.clock.id == e.key
        if e.next:
            assert e.time == 1 + max(log.get(c).time for c in e.next)
        else:
            assert e.time == 1
        named.update(e.next)
    assert log.head_cids == [e.cid for e in entries if e.cid not in named]


@given(scenarios())
def test_join_idempotent(s: Scenario) -> None:
    for log in s.logs:
        once = merged(log)
        assert state(once) == state(log)
        assert state(merged(log, log)) == state(once)
        before = state(once)
        assert once.join(log) == []
        assert once.join(once) == []
        assert state(once) == before
        check_well_formed(once)


@given(scenarios())
def test_join_commutative(s: Scenario) -> None:
    results = [state(merged(*order)) for order in itertools.permutations(s.logs)]
    assert all(r == results[0] for r in results)
    # and joining in place agrees with the fresh merges
    a, b = s.logs[0], s.logs[1]
    ab, ba = merged(a), merged(b)
    ab.join(b)
    ba.join(a)
    assert state(ab) == state(ba) == state(merged(a, b))


@given(scenarios())
def test_join_associative(s: Scenario) -> None:
    a, b, c = s.logs
    left = merged(merged(a, b), c)
    right = merged(a, merged(b, c))
    assert state(left) == state(right)
    check_well_formed(left)
    # the union holds exactly the entries of the three logs
    assert {e.cid for e in left} == {e.cid for log in s.logs for e in log}


@given(scenarios())
def test_join_absorbs_a_contained_log(s: Scenario) -> None:
    a, b = s.logs[0], s.logs[1]
    ab = merged(a, b)
    assert state(merged(ab, b)) == state(ab)
    assert state(merged(b, ab)) == state(ab)


class Gossip(RuleBasedStateMachine):
    """Replicas append and gossip at random; a full exchange in any rotation makes them identical."""

    def __init__(self) -> None:
        super().__init__()
        self.logs: list[Log] = []
        self.known: list[set[CID]] = []  # the model: which entries each replica must hold
        self.appended: set[CID] = set()

    @initialize(n=st.integers(min_value=3, max_value=4), shared_store=st.booleans())
    def start(self, n: int, shared_store: bool) -> None:
        shared = MemoryBlockStore()
        self.logs = [
            new_replica(REPLICAS[i % len(REPLICAS)], shared if shared_store else None) for i in range(n)
        ]
        self.known = [set() for _ in range(n)]

    def _index(self, i: int) -> int:
        return i % len(self.logs)

    @rule(i=st.integers(min_value=0, max_value=3), payload=st.one_of(int_values, payloads))
    def append(self, i: int, payload: IPLDKind) -> None:
        i = self._index(i)
        log = self.logs[i]
        heads_before = log.heads
        entry = log.append(payload)
        assert entry.next == tuple(e.cid for e in heads_before)
        assert entry.time == 1 + max((e.time for e in heads_before), default=0)
        assert log.head_cids == [entry.cid]
        self.known[i].add(entry.cid)
        self.appended.add(entry.cid)

    @rule(src=st.integers(min_value=0, max_value=3), dst=st.integers(min_value=0, max_value=3))
    def gossip(self, src: int, dst: int) -> None:
        src, dst = self._index(src), self._index(dst)
        new = self.logs[dst].join(self.logs[src])
        assert {e.cid for e in new}.isdisjoint(self.known[dst])
        self.known[dst] |= self.known[src]

    @rule(rotation=st.integers(min_value=0, max_value=3))
    def exchange_all(self, rotation: int) -> None:
        self.full_exchange(rotation)

    def full_exchange(self, rotation: int) -> None:
        n = len(self.logs)
        order = [self.logs[(rotation + k) % n] for k in range(n)]
        for dst in order:
            for src in order:
                if dst is not src:
                    dst.join(src)
        self.known = [set(self.appended) for _ in range(n)]
        first = state(self.logs[0])
        for log in self.logs:
            assert state(log) == first
            check_well_formed(log)
        assert set(first[0]) == self.appended

    @invariant()
    def replicas_hold_what_they_were_told(self) -> None:
        for log, known in zip(self.logs, self.known, strict=True):
            assert {e.cid for e in log} == known
            assert log.pending == 0
            assert not log.missing

    @invariant()
    def replicas_are_well_formed(self) -> None:
        for log in self.logs:
            check_well_formed(log)

    def teardown(self) -> None:
        if self.logs:
            self.full_exchange(len(self.appended))


TestGossip = Gossip.TestCase
TestGossip.settings = settings(stateful_step_count=30)
