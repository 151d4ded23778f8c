"""A log started at a frontier merges as a full replica does: it admits exactly the entries not under it.

Three writers append and gossip at random; at a random moment one replica's heads become the frontier
(a commit's heads). A log started there then joins every replica (whose blocks hold the whole history,
as an IPFS node would), and must end with the full log's heads, the full log's entries minus those under
the frontier, and the full count; a counter over it adds every amount exactly once.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ipfs_log import CID, Entry, Identity, IPLDKind, Log, MemoryBlockStore, WriteList
from ipfs_log.frontier import Frontier
from stores.counter import Counter
from tests.conftest import ALICE, BOB, CAROL

WRITERS = (ALICE, BOB, CAROL)
ACCESS = WriteList([w.public_key for w in WRITERS])

step = st.one_of(
    st.tuples(st.just("append"), st.integers(0, 2), st.integers(-5, 5)),
    st.tuples(st.just("sync"), st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.just("commit"), st.integers(0, 2), st.just(0)),
)


def replica(identity: Identity, store: MemoryBlockStore) -> Log:
    return Log(identity, store, log_id="frontier", access=ACCESS)


def past(log: Log, heads: list[CID]) -> set[CID]:
    seen: set[CID] = set()
    todo = list(heads)
    while todo:
        cid = todo.pop()
        if cid not in seen:
            seen.add(cid)
            todo.extend(log.get(cid).next)
    return seen


@given(st.lists(step, min_size=1, max_size=40), st.booleans())
def test_frontier_log_converges(steps: list[tuple[str, int, int]], complete: bool) -> None:
    store = MemoryBlockStore()  # every block, as an IPFS node holding the history
    logs = [replica(w, store) for w in WRITERS]
    commit: tuple[list[Entry], int] | None = None
    for op, i, n in steps:
        if op == "append":
            logs[i].append({"op": "INC", "value": n})
        elif op == "sync":
            logs[i].join(logs[n])
        elif commit is None and len(logs[i]):
            commit = (logs[i].heads, len(logs[i]))
    if commit is None:
        commit = (logs[0].heads, len(logs[0]))
    heads, count = commit
    full = replica(ALICE, MemoryBlockStore())
    for log in logs:
        full.join(log)
    covered = past(full, [e.cid for e in heads])
    assert len(covered) == count
    under = {c: full.get(c).time for c in covered if c not in {e.cid for e in heads}} if complete else None
    frontier = Frontier(heads, count=count, under=under, complete=complete)
    started = Log.start_at(ALICE, MemoryBlockStore(), frontier, heads, log_id="frontier", access=ACCESS)
    counter = Counter(started, checkpoint=_counter_checkpoint(full, covered, heads))
    for log in logs:
        started.join_heads(log.head_cids, source=store)
    kept = {e.cid for e in full} - covered | {e.cid for e in heads}
    assert {e.cid for e in started} == kept
    assert started.head_cids == full.head_cids
    assert started.count == len(full)
    assert counter.value == Counter(full).value
    if heads:  # a new write gets a clock above every head
        assert started.append({"op": "INC", "value": 1}).time > max(e.time for e in heads)


def _counter_checkpoint(full: Log, covered: set[CID], heads: list[Entry]) -> IPLDKind:
    totals: dict[bytes, int] = {}
    for cid in covered:
        entry = full.get(cid)
        payload = entry.payload
        assert isinstance(payload, dict)
        value = payload["value"]
        assert isinstance(value, int)
        totals[entry.key] = totals.get(entry.key, 0) + value
    return {
        "type": "counter",
        "v": 1,
        "heads": list(sorted(e.cid for e in heads)),
        "state": [[k, t] for k, t in sorted(totals.items())],
    }
