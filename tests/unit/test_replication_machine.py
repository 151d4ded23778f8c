"""The replicator's sans-I/O decisions: announcements, inbox answers, fetch lanes, bounds."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ipfs_log.cid import CID
from orbit.replication.machine import Lane, Machine, Outcome, Policy

HEADS = [CID.for_block(b"head-%d" % i) for i in range(64)]


def machine(**policy: float) -> Machine:
    return Machine(Policy(**policy), 0.0, random.Random(7))  # type: ignore[arg-type]


def test_a_write_is_announced_on_the_topic_at_once() -> None:
    m = machine()
    m.wrote()
    assert m.wake_at() == -float("inf")
    sends = m.sends(0.0, ours=HEADS[:1])
    assert [(s.to, s.reason) for s in sends] == [(None, "write")]
    assert m.sends(0.0, ours=HEADS[:1]) == []


def test_a_round_is_skipped_when_a_peer_announced_the_same_heads() -> None:
    quiet, alone = machine(), machine()
    quiet.heard("p", HEADS[:1], 1.0, ours=HEADS[:1], held=HEADS[:1], neighbor=True)
    fired = [s for t in range(31) for s in alone.sends(float(t), ours=HEADS[:1])]
    assert [s.reason for s in fired] == ["round"]  # once per round, in its second half
    assert all(s.reason != "round" for t in range(31) for s in quiet.sends(float(t), ours=HEADS[:1]))


def test_a_peer_behind_is_answered_in_its_inbox_only_by_direct_peers() -> None:
    near, far = machine(), machine()
    for m, neighbor in ((near, True), (far, False)):
        m.heard("late", HEADS[:1], 0.0, ours=HEADS[1:2], held=HEADS[:2], neighbor=neighbor)
    assert [(s.to, s.reason, s.bundle) for s in near.sends(0.0, ours=HEADS[1:2])] == [
        ("late", "answer", True)
    ]
    assert far.sends(0.0, ours=HEADS[1:2]) == []


def test_new_direct_peers_are_greeted_even_by_an_empty_replica() -> None:
    m = machine()
    m.joined(["a", "b"])
    assert sorted((s.to, s.reason) for s in m.sends(0.0, ours=[])) == [("a", "greet"), ("b", "greet")]


def test_a_suspect_peer_never_delays_a_peer_in_good_standing() -> None:
    m = machine(batch=4)
    m.heard("mallory", HEADS[:40], 0.0, ours=[], held=[], neighbor=True)
    m.heard("alice", HEADS[40:41], 0.0, ours=[], held=[], neighbor=True)
    m.admitted("alice", 0.0)  # her inline entries were admitted: good standing
    job = m.next_fetch(Lane.NEW, 0.0)
    assert job is not None
    assert job.peer == "mallory"
    assert len(job.heads) == 4
    m.fetched(job, Outcome.MISSING, 0.0)
    assert m.peers()["mallory"].lane is Lane.SUSPECT
    trusted = m.next_fetch(Lane.TRUSTED, 0.0)
    assert trusted is not None
    assert trusted.heads == (HEADS[40],)
    # Mallory's other heads wait in the suspect lane, after the failed ones' backoff.
    assert m.next_fetch(Lane.NEW, 0.0) is None
    assert m.next_fetch(Lane.SUSPECT, 0.0) is not None


def test_failed_heads_back_off_doubling_and_rejected_heads_are_never_wanted_again() -> None:
    m = machine(retry=1.0, max_retry=4.0, batch=1)
    m.heard("p", HEADS[:1], 0.0, ours=[], held=[], neighbor=False)
    waits: list[float] = []
    now = 0.0
    for _ in range(4):
        job = m.next_fetch(Lane.NEW if not waits else Lane.SUSPECT, now)
        assert job is not None
        m.fetched(job, Outcome.MISSING, now)
        ready = m.fetch_wake_at(Lane.SUSPECT)
        waits.append(ready - now)
        now = ready
    assert waits == [1.0, 2.0, 4.0, 4.0]
    job = m.next_fetch(Lane.SUSPECT, now)
    assert job is not None
    m.fetched(job, Outcome.REJECTED, now)
    m.heard("q", HEADS[:1], now, ours=[], held=[], neighbor=False)
    assert m.wanted == 0
    assert m.is_rejected(HEADS[0])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2000), st.integers(1, 300)), min_size=1, max_size=40))
def test_memory_stays_bounded_whatever_peers_announce(floods: list[tuple[int, int]]) -> None:
    policy = Policy(max_peers=16, max_wanted=32)
    m = Machine(policy, 0.0, random.Random(1))
    for i, (peer, count) in enumerate(floods):
        heads = [CID.for_block(b"%d-%d-%d" % (i, peer, k)) for k in range(min(count, 256))]
        m.heard(f"peer-{peer}", heads, float(i), ours=[], held=[], neighbor=False)
        assert len(m.peers()) <= policy.max_peers
        assert m.wanted <= policy.max_peers * policy.max_wanted


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 6))
def test_each_lane_serves_its_peers_in_turn(seed: int, peers: int) -> None:
    m = Machine(Policy(batch=1), 0.0, random.Random(seed))
    for p in range(peers):
        m.heard(f"p{p}", HEADS[p * 8 : p * 8 + 8], 0.0, ours=[], held=[], neighbor=False)
    served = []
    for _ in range(peers):
        job = m.next_fetch(Lane.NEW, 0.0)
        assert job is not None
        served.append(job.peer)
    assert sorted(served) == [f"p{p}" for p in range(peers)]  # nobody twice before everyone once


def test_one_replica_is_elected_to_send_a_gap_its_entries() -> None:
    replicas = [machine() for _ in range(5)]
    names = [f"r{i}" for i in range(5)]
    for m, name in zip(replicas, names, strict=True):
        m.name = name
        for other in names:
            if other != name:  # each heard the others announce the same heads
                m.heard(other, HEADS[1:2], 0.0, ours=HEADS[1:2], held=HEADS[:2], neighbor=True)
        m.heard("late", HEADS[:1], 0.0, ours=HEADS[1:2], held=HEADS[:2], neighbor=True)
    answers = [s for m in replicas for s in m.sends(0.0, ours=HEADS[1:2]) if s.to == "late"]
    assert len(answers) == 5  # everyone answers with its heads...
    assert sum(s.bundle for s in answers) == 1  # ...one with the entries


def test_a_peer_that_left_is_no_longer_a_target_but_its_heads_stay_wanted() -> None:
    m = machine()
    m.heard("gone", HEADS[:1], 0.0, ours=[], held=[], neighbor=True)
    m.heard("idle", HEADS[1:2], 0.0, ours=HEADS[1:2], held=HEADS[1:2], neighbor=True)
    m.left(["gone", "idle"])
    assert "idle" not in m.peers()  # nothing wanted of it: forgotten
    assert m.peers()["gone"].heads == ()
    assert m.wanted == 1  # what it announced may still come from other nodes
