"""Log behaviour: append, heads, refs, ranges, loading, resumable joins, batched fetching, events."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipfs_log import (
    CID,
    BlockNotFoundError,
    BlockStore,
    CodecError,
    Entry,
    EntryNotFoundError,
    EntryTooLargeError,
    Identity,
    Log,
    MemoryBlockStore,
    Range,
    RangeArgs,
)
from tests.conftest import ALICE, BOB, CAROL, WRITERS

LOG_ID = "test-log"
LogFactory = Callable[..., Log]


def new_log(identity: Identity = ALICE, store: BlockStore | None = None, *, max_refs: int = 16) -> Log:
    store = store if store is not None else MemoryBlockStore()
    return Log(identity, store, log_id=LOG_ID, access=WRITERS, max_refs=max_refs)


def cids(entries: Iterable[Entry]) -> list[CID]:
    return [e.cid for e in entries]


class CountingStore:
    """A MemoryBlockStore that counts how it is asked: one ``get_many`` call is one network round."""

    def __init__(self, inner: BlockStore) -> None:
        self.inner = inner
        self.get_many_calls = 0
        self.get_calls = 0
        self.blocks_served = 0
        self.batches: list[int] = []

    def get(self, cid: CID) -> bytes:
        self.get_calls += 1
        return self.inner.get(cid)

    def get_many(self, cids: Iterable[CID]) -> dict[CID, bytes]:
        asked = list(cids)
        self.get_many_calls += 1
        self.batches.append(len(asked))
        found = self.inner.get_many(asked)
        self.blocks_served += len(found)
        return found

    def put(self, cid: CID, block: bytes) -> None:
        self.inner.put(cid, block)

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        self.inner.put_many(blocks)

    def has(self, cid: CID) -> bool:
        return self.inner.has(cid)


def multi_writer_log() -> Log:
    """Three writers, interleaved appends and merges: a DAG with concurrent branches and ties."""
    store = MemoryBlockStore()
    a, b, c = new_log(ALICE, store), new_log(BOB, store), new_log(CAROL, store)
    for i in range(4):
        a.append(f"a{i}")
        b.append(f"b{i}")
        if i % 2:
            c.append(f"c{i}")
        if i == 1:
            a.join(b)
    c.join(a)
    c.append("merge")
    b.append("b-late")
    a.join(c)
    a.join(b)
    return a


# ------------------------------------------------------------------ append, heads, clocks


def test_append_chains_entries(log_factory: LogFactory) -> None:
    log = log_factory()
    entries = [log.append(i) for i in range(5)]
    assert [e.time for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].next == ()
    for prev, entry in itertools.pairwise(entries):
        assert entry.next == (prev.cid,)
    assert log.heads == [entries[-1]]
    assert list(log) == entries == log.values()
    assert len(log) == 5
    assert all(e.cid in log for e in entries)
    assert all(log.get(e.cid) is e for e in entries)
    assert [e.payload for e in log] == [0, 1, 2, 3, 4]
    assert all(e.key == ALICE.public_key and e.clock.id == ALICE.public_key for e in entries)
    assert all(e.log_id == "test-log" for e in entries)


def test_entries_are_stored_and_verifiable(store: MemoryBlockStore, log_factory: LogFactory) -> None:
    log = log_factory()
    entry = log.append({"op": "PUT", "key": "k", "value": [1, 2.5, None]})
    assert store.get(entry.cid) == entry.block
    assert CID.for_block(entry.block) == entry.cid
    again = Entry.from_block(entry.cid, entry.block, log_id="test-log", access=WRITERS)
    assert again == entry
    assert again.payload == entry.payload
    assert again.signing_bytes() == entry.signing_bytes()


def test_an_entry_over_the_size_limit_is_never_made(
    store: MemoryBlockStore, log_factory: LogFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every replica refuses an entry over max_entry_bytes, so the writer must not sign or store one."""
    log = log_factory()
    first = log.append("small")
    blocks = set(store)
    signed: list[bytes] = []
    sign = Identity.sign

    def counting(self: Identity, data: bytes) -> bytes:
        signed.append(data)
        return sign(self, data)

    monkeypatch.setattr(Identity, "sign", counting)
    with pytest.raises(EntryTooLargeError) as caught:
        log.append("x" * log.limits.max_entry_bytes)
    assert signed == []
    assert caught.value.size > caught.value.limit == log.limits.max_entry_bytes
    assert isinstance(caught.value, CodecError)
    with pytest.raises(EntryTooLargeError):
        log.append_many(["ok", "y" * 2_000_000])  # one too large: none of the chain is stored
    assert log.heads == [first]
    assert len(log) == 1
    assert set(store) == blocks
    # just under the limit is accepted, and verifies on a replica
    big = log.append("z" * (log.limits.max_entry_bytes - 1_000))
    assert log.limits.max_entry_bytes - 1_000 < len(big.block) <= log.limits.max_entry_bytes
    assert Entry.from_block(big.cid, big.block, log_id=log.id) == big


def test_append_after_a_join_merges_the_heads(store: MemoryBlockStore, log_factory: LogFactory) -> None:
    a, b = log_factory(ALICE), log_factory(BOB)
    a.append("a1")
    a.append("a2")
    b1 = b.append("b1")
    a.join(b)
    assert len(a.heads) == 2
    heads = a.heads
    assert [e.sort_key for e in heads] == sorted(e.sort_key for e in heads)
    merge = a.append("merge")
    assert merge.next == tuple(e.cid for e in heads)
    assert merge.time == 3
    assert a.head_cids == [merge.cid]
    b.join(a)
    assert b.append("b2").time == 4
    assert b1 in b.values()


def test_append_many_is_a_chain(log_factory: LogFactory) -> None:
    log = log_factory()
    first = log.append("x")
    batch = log.append_many(["y", "z", "w"])
    assert [e.time for e in batch] == [2, 3, 4]
    assert batch[0].next == (first.cid,)
    assert log.head_cids == [batch[-1].cid]
    assert log.append_many([]) == []
    assert len(log) == 4


def test_refs_are_power_of_two_skip_pointers(log_factory: LogFactory) -> None:
    # A deterministic skip list: position n points back 2**k places for each 2**k dividing n.
    log = log_factory()
    for i in range(70):
        log.append(i)
    order = list(log)
    assert list(order[64].refs) == [order[64 - d].cid for d in (2, 4, 8, 16, 32, 64)]
    assert order[63].refs == ()
    assert list(order[12].refs) == [order[10].cid, order[8].cid]
    for n, entry in enumerate(order):
        expected = [order[n - d].cid for d in (2, 4, 8, 16, 32, 64) if d <= n and n % d == 0]
        assert list(entry.refs) == expected, n
        assert set(entry.refs).isdisjoint(entry.next)


def test_refs_respect_max_refs(log_factory: LogFactory) -> None:
    log = new_log(max_refs=3)
    for i in range(40):
        log.append(i)
    order = list(log)
    for n, entry in enumerate(order):
        assert list(entry.refs) == [order[n - d].cid for d in (2, 4, 8) if d <= n and n % d == 0]


# ------------------------------------------------------------------ ranges


def reference_range(
    log: Log,
    gt: CID | None,
    gte: CID | None,
    lt: CID | None,
    lte: CID | None,
    amount: int | None,
    reverse: bool,
) -> list[Entry]:
    entries = list(log)
    pos = {e.cid: i for i, e in enumerate(entries)}
    keep = [
        e
        for i, e in enumerate(entries)
        if (gt is None or i > pos[gt])
        and (gte is None or i >= pos[gte])
        and (lt is None or i < pos[lt])
        and (lte is None or i <= pos[lte])
    ]
    if reverse:
        keep.reverse()
    return keep if amount is None else keep[: max(amount, 0)]


RANGE_LOG = multi_writer_log()
RANGE_CIDS = cids(RANGE_LOG)
bound = st.one_of(st.none(), st.sampled_from(RANGE_CIDS))


@given(bound, bound, bound, bound, st.one_of(st.none(), st.integers(-1, len(RANGE_CIDS) + 2)), st.booleans())
def test_iter_ranges_match_a_reference(
    gt: CID | None, gte: CID | None, lt: CID | None, lte: CID | None, amount: int | None, reverse: bool
) -> None:
    got = list(RANGE_LOG.iter(gt=gt, gte=gte, lt=lt, lte=lte, amount=amount, reverse=reverse))
    assert got == reference_range(RANGE_LOG, gt, gte, lt, lte, amount, reverse)


def test_iter_examples() -> None:
    log, order = RANGE_LOG, list(RANGE_LOG)
    assert len(order) > 10
    assert list(log.iter()) == order
    assert list(log.iter(reverse=True)) == order[::-1]
    assert list(log.iter(amount=3)) == order[:3]
    assert list(log.iter(amount=3, reverse=True)) == order[::-1][:3]
    assert list(log.iter(gt=order[2].cid, lte=order[5].cid)) == order[3:6]
    assert list(log.iter(gte=order[2].cid, lt=order[5].cid, reverse=True)) == order[2:5][::-1]
    assert list(log.iter(gt=order[5].cid, lt=order[2].cid)) == []
    assert list(log.iter(amount=0)) == []


def test_a_range_is_a_frozen_value_whose_fields_are_the_read_keywords() -> None:
    assert list(RangeArgs.__annotations__) == list(Range.__match_args__)
    where = Range(gte=RANGE_CIDS[2], amount=3)
    assert where == Range(gte=RANGE_CIDS[2], amount=3)
    assert where.positions(len(RANGE_CIDS), RANGE_CIDS.index) == (2, 5)
    with pytest.raises(AttributeError, match="Range is immutable"):
        where.amount = 4  # type: ignore[misc]


@pytest.mark.parametrize("name", ["gt", "gte", "lt", "lte"])
def test_iter_unknown_bound(name: str) -> None:
    unknown = CID.for_block(b"nope")
    with pytest.raises(EntryNotFoundError) as info:
        list(RANGE_LOG.iter(**{name: unknown}))  # type: ignore[arg-type]
    assert info.value.cid == unknown
    assert isinstance(info.value, KeyError)


def test_get_unknown() -> None:
    unknown = CID.for_block(b"nope")
    with pytest.raises(EntryNotFoundError):
        RANGE_LOG.get(unknown)
    assert unknown not in RANGE_LOG


# ------------------------------------------------------------------ loading


def state(log: Log) -> tuple[list[CID], list[CID]]:
    return cids(log), log.head_cids


def test_load_everything() -> None:
    full = multi_writer_log()
    calls: list[int] = []
    loaded = Log.load(BOB, full.store, full.head_cids, log_id=LOG_ID, access=WRITERS, progress=calls.append)
    assert state(loaded) == state(full)
    assert [e.payload for e in loaded] == [e.payload for e in full]
    assert calls
    assert calls == sorted(calls)
    assert calls[-1] == len(full)


@pytest.mark.parametrize("limit", [0, 1, 2, 3, 5, 8, 13, 100])
def test_load_newest(limit: int) -> None:
    full = multi_writer_log()
    calls: list[int] = []
    loaded = Log.load(
        BOB, full.store, full.head_cids, log_id=LOG_ID, access=WRITERS, limit=limit, progress=calls.append
    )
    tail = list(full)[-limit:] if limit else []
    assert cids(loaded) == cids(tail)
    assert len(loaded) == min(limit, len(full))
    assert calls == list(range(1, len(loaded) + 1))
    # heads: the loaded entries that no loaded entry names in next
    named = {c for e in loaded for c in e.next}
    assert loaded.head_cids == [e.cid for e in tail if e.cid not in named]
    if limit >= len(full):
        assert state(loaded) == state(full)


@given(
    st.integers(min_value=1, max_value=3),
    st.lists(st.integers(0, 2), min_size=1, max_size=30),
    st.integers(0, 35),
)
def test_load_newest_matches_the_full_logs_tail(n: int, writers: list[int], limit: int) -> None:
    store = MemoryBlockStore()
    logs = [new_log(w, store) for w in (ALICE, BOB, CAROL)[:n]]
    for step, w in enumerate(writers):
        logs[w % n].append(step)
        if step % 4 == 3:
            logs[(w + 1) % n].join(logs[w % n])
    full = new_log(ALICE, MemoryBlockStore())
    for log in logs:
        full.join(log)
    loaded = Log.load(ALICE, store, full.head_cids, log_id=LOG_ID, access=WRITERS, limit=limit)
    assert cids(loaded) == (cids(full)[-limit:] if limit else [])


def test_load_missing_block() -> None:
    full = multi_writer_log()
    store = MemoryBlockStore()
    head = full.heads[-1]
    store.put(head.cid, head.block)
    with pytest.raises(BlockNotFoundError) as info:
        Log.load(ALICE, store, [head.cid], log_id=LOG_ID, access=WRITERS, limit=5)
    assert info.value.cid in head.next
    with pytest.raises(BlockNotFoundError):
        Log.load(ALICE, store, [head.cid], log_id=LOG_ID, access=WRITERS)


# ------------------------------------------------------------------ resumable joins


def test_join_with_a_missing_block_resumes() -> None:
    alice = new_log(ALICE)
    chain = [alice.append(f"a{i}") for i in range(6)]
    bob = new_log(BOB, alice.store)
    bob_chain = [bob.append(f"b{i}") for i in range(3)]
    alice.join(bob)
    top = alice.append("top")
    source = MemoryBlockStore()
    lost = chain[2]
    source.put_many((e.cid, e.block) for e in alice if e.cid != lost.cid)

    target = new_log(CAROL)
    seen: list[list[CID]] = []
    target.subscribe(lambda batch: seen.append(cids(batch)))
    with pytest.raises(BlockNotFoundError) as info:
        target.join_heads([top.cid], source=source)
    assert info.value.cid == lost.cid
    assert target.missing == frozenset({lost.cid})
    # in: every entry the walk reached (over next and refs, around the lost block) whose history is
    # complete -- Bob's whole chain, and a0/a1 only if a skip pointer led past a2
    by_cid = {e.cid: e for e in alice}
    reached, frontier = set(), [top.cid]
    while frontier:
        cid = frontier.pop()
        if cid in reached or cid == lost.cid:
            continue
        reached.add(cid)
        frontier += [*by_cid[cid].next, *by_cid[cid].refs]

    def complete_history(cid: CID) -> bool:
        return cid != lost.cid and all(complete_history(p) for p in by_cid[cid].next)

    complete = {c for c in reached if complete_history(c)}
    assert set(cids(bob_chain)) <= complete
    assert set(cids(target)) == complete
    assert target.pending == len(reached) - len(complete)  # reached, verified, waiting for a2
    assert cids(target) == [e.cid for e in alice if e.cid in complete]
    assert seen == [cids(target)]
    assert all(target.store.has(c) for c in complete)

    # still missing: resume raises again and changes nothing
    with pytest.raises(BlockNotFoundError):
        target.resume(source)
    assert set(cids(target)) == complete

    source.put(lost.cid, lost.block)
    admitted = target.resume(source)
    assert set(cids(admitted)) == set(cids(alice)) - complete
    assert state(target) == state(alice)
    assert target.missing == frozenset()
    assert target.pending == 0
    assert seen[-1] == cids(admitted)


def test_missing_block_reached_only_through_refs_is_not_required() -> None:
    alice = new_log(ALICE)
    chain = [alice.append(i) for i in range(8)]
    source = MemoryBlockStore()
    source.put_many((e.cid, e.block) for e in chain)
    target = new_log(BOB)
    target.join_heads([chain[3].cid], source=source)
    assert len(target) == 4
    # chain[6] refs chain[4] and chain[4] refs chain[2] and chain[0]; their next chains are complete
    assert chain[4].cid in chain[6].refs
    assert target.join(alice) == chain[4:]
    assert not target.missing


def test_missing_head() -> None:
    target = new_log(BOB)
    ghost = CID.for_block(b"ghost")
    with pytest.raises(BlockNotFoundError) as info:
        target.join_heads([ghost], source=MemoryBlockStore())
    assert info.value.cid == ghost
    assert isinstance(info.value, KeyError)
    assert target.missing == frozenset({ghost})
    assert len(target) == 0


# ------------------------------------------------------------------ batched fetching


@pytest.mark.parametrize("n", [1, 2, 3, 64, 1024])
def test_join_fetches_in_logarithmic_rounds(n: int) -> None:
    alice = new_log(ALICE)
    alice.append_many(range(n))
    source = CountingStore(alice.store)
    target = new_log(BOB)
    admitted = target.join_heads(alice.head_cids, source=source)
    assert len(admitted) == n
    assert state(target) == state(alice)
    rounds = source.get_many_calls
    assert rounds <= 2 * math.log2(n) + 2, source.batches
    assert source.get_calls == 0
    assert source.blocks_served == n
    # nothing is asked for twice
    assert sum(source.batches) == n


def test_join_asks_its_own_store_first() -> None:
    alice = new_log(ALICE)
    alice.append_many(range(10))
    shared = CountingStore(alice.store)
    target = Log(BOB, shared, log_id=LOG_ID, access=WRITERS)
    other = CountingStore(MemoryBlockStore())
    target.join_heads(alice.head_cids, source=other)
    assert len(target) == 10
    assert other.get_many_calls == 0


# ------------------------------------------------------------------ events


def test_subscribe(log_factory: LogFactory) -> None:
    a, b = log_factory(ALICE), log_factory(BOB)
    got: list[list[Entry]] = []
    unsubscribe = a.subscribe(lambda batch: got.append(list(batch)))
    e1 = a.append(1)
    batch = a.append_many([2, 3])
    assert got == [[e1], batch]
    b1, b2 = b.append("b1"), b.append("b2")
    assert a.join(b) == [b1, b2]
    assert got[-1] == [b1, b2]
    assert a.join(b) == []
    assert len(got) == 3  # nothing admitted, nothing announced
    unsubscribe()
    a.append(4)
    assert len(got) == 3


def test_subscribers_see_batches_in_log_order() -> None:
    full = multi_writer_log()
    target = new_log(BOB)
    got: list[Sequence[Entry]] = []
    target.subscribe(got.append)
    target.join(full)
    assert len(got) == 1
    assert list(got[0]) == list(full)


# ------------------------------------------------------------------ one writer, two devices


def test_same_writer_on_two_devices_has_a_total_order() -> None:
    """OrbitDB issue #513: one key on two devices forks the log; the order must not depend on who joins."""
    store = MemoryBlockStore()
    laptop, phone = new_log(ALICE, store), new_log(ALICE, store)
    base = laptop.append("base")
    phone.join(laptop)
    x, y = laptop.append("from laptop"), phone.append("from phone")
    assert x.time == y.time == 2
    assert x.key == y.key
    laptop.join(phone)
    phone.join(laptop)
    assert state(laptop) == state(phone)
    tie = sorted([x, y], key=lambda e: bytes(e.cid))
    assert list(laptop) == [base, *tie]
    assert laptop.head_cids == cids(tie)
    fresh = new_log(BOB, MemoryBlockStore())
    fresh.join(phone)
    assert state(fresh) == state(laptop)
    merged = laptop.append("merge")
    assert merged.next == tuple(cids(tie))
