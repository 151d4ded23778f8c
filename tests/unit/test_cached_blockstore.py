"""CachedBlockStore over a Kubo fake: reads served locally never touch the network, writes are
acknowledged when durable locally and uploaded later if the node fails, the upload queue survives a
restart, bad blocks from the node are never cached, pins wait for the uploads."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ipfs_log.cid import CID
from ipfs_log.codec import encode
from ipfs_log.errors import BlockNotFoundError
from orbit.errors import IpfsBlockMismatchError, IpfsBlockTooLargeError, IpfsUnreachableError
from orbit.ipfs.blockstore import IpfsBlockStore
from orbit.ipfs.client import MAX_BLOCK_BYTES, KuboClient
from orbit.ipfs.uploads import CachedBlockStore
from orbit.storage.blocks import LocalBlockStore
from tests.fake_kubo import FakeKubo
from tests.serve_process import wait_until


def block(tag: str) -> tuple[CID, bytes]:
    data = encode({"tag": tag, "nonce": os.urandom(8)})
    return CID.for_block(data), data


@pytest.fixture
def fake() -> FakeKubo:
    return FakeKubo()


@pytest.fixture
def remote(fake: FakeKubo) -> Iterator[IpfsBlockStore]:
    client = KuboClient("http://kubo.test", transport=httpx.MockTransport(fake), block_timeout=0.2)
    with IpfsBlockStore(client) as store:
        yield store


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalBlockStore]:
    store = LocalBlockStore(tmp_path / "blocks")
    yield store
    store.close()


@pytest.fixture
def cached(local: LocalBlockStore, remote: IpfsBlockStore, tmp_path: Path) -> Iterator[CachedBlockStore]:
    store = CachedBlockStore(local, remote, tmp_path, background=False, retry_interval=60)
    yield store
    store.close()


def test_local_hit_never_touches_the_network(
    cached: CachedBlockStore, local: LocalBlockStore, fake: FakeKubo
) -> None:
    cid, data = block("local")
    local.put(cid, data)
    fake.down = True
    assert cached.get(cid) == data
    assert cached.get_many([cid]) == {cid: data}
    assert cached.has(cid)
    assert fake.calls == []


def test_read_through_caches_verified_blocks(
    cached: CachedBlockStore, local: LocalBlockStore, fake: FakeKubo
) -> None:
    cid, data = block("remote")
    other, other_data = block("remote 2")
    fake.blocks.update({cid: data, other: other_data})
    assert cached.get(cid) == data
    assert cached.get_many([cid, other]) == {cid: data, other: other_data}
    assert local.get(other) == other_data
    calls = len(fake.calls)
    assert cached.get(other) == other_data
    assert len(fake.calls) == calls  # now a local hit


def test_corrupt_block_from_the_node_is_never_cached(
    cached: CachedBlockStore, local: LocalBlockStore, fake: FakeKubo
) -> None:
    cid, data = block("corrupt")
    fake.blocks[cid] = data
    fake.corrupt.add(cid)
    with pytest.raises(IpfsBlockMismatchError):
        cached.get(cid)
    with pytest.raises(IpfsBlockMismatchError):
        cached.get_many([cid])
    assert not local.has(cid)


def test_missing_everywhere(cached: CachedBlockStore) -> None:
    cid, _ = block("nowhere")
    with pytest.raises(BlockNotFoundError):
        cached.get(cid)
    assert cached.get_many([cid]) == {}


def test_write_through(cached: CachedBlockStore, local: LocalBlockStore, fake: FakeKubo) -> None:
    blocks = [block(f"w{i}") for i in range(5)]
    cached.put_many(blocks)
    assert all(local.get(c) == d for c, d in blocks)
    assert all(fake.blocks[c] == d for c, d in blocks)
    assert cached.pending() == 0


def test_node_down_write_is_acknowledged_and_uploaded_later(
    cached: CachedBlockStore, local: LocalBlockStore, fake: FakeKubo
) -> None:
    fake.down = True
    cid, data = block("while down")
    cached.put(cid, data)  # returns: durable locally
    assert local.get(cid) == data
    assert cached.pending() == 1
    assert isinstance(cached.last_error, IpfsUnreachableError)
    assert "cannot reach" in cached.pending_errors()[cid]
    later, later_data = block("in backoff")
    calls = len(fake.calls)
    cached.put(later, later_data)  # within retry_interval: not even tried
    assert len(fake.calls) == calls
    assert cached.flush() == 2  # still down
    fake.down = False
    assert cached.flush() == 0
    assert fake.blocks[cid] == data
    assert fake.blocks[later] == later_data


def test_node_slow_or_failing_write_is_acknowledged(cached: CachedBlockStore, fake: FakeKubo) -> None:
    fake.slow = True
    cid, data = block("slow")
    cached.put(cid, data)
    assert cached.pending() == 1
    fake.slow = False
    fake.put_failures = 1
    assert cached.flush() == 1  # HTTP 500 from the node: still queued
    assert cached.flush() == 0


def test_pending_uploads_survive_a_restart(
    local: LocalBlockStore, remote: IpfsBlockStore, tmp_path: Path, fake: FakeKubo
) -> None:
    fake.down = True
    first = CachedBlockStore(local, remote, tmp_path, background=False)
    blocks = [block(f"r{i}") for i in range(3)]
    first.put_many(blocks)
    first.close()
    fake.down = False
    second = CachedBlockStore(local, remote, tmp_path, background=False)
    assert second.pending() == 3
    assert second.flush() == 0
    assert all(fake.blocks[c] == d for c, d in blocks)
    second.close()


def test_background_thread_retries(
    local: LocalBlockStore, remote: IpfsBlockStore, tmp_path: Path, fake: FakeKubo
) -> None:
    fake.down = True
    store = CachedBlockStore(local, remote, tmp_path, retry_interval=0.05)
    cid, data = block("background")
    store.put(cid, data)
    fake.down = False
    deadline = time.monotonic() + 10
    while store.pending() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert store.pending() == 0
    assert fake.blocks[cid] == data
    started = time.monotonic()
    store.close()
    assert time.monotonic() - started < 2


def test_journal_is_written_before_the_local_store(
    remote: IpfsBlockStore, tmp_path: Path, fake: FakeKubo
) -> None:
    class FailingLocal(LocalBlockStore):
        def put_many(self, blocks):
            raise OSError("disk gone")

    local = FailingLocal(tmp_path / "blocks")
    store = CachedBlockStore(local, remote, tmp_path, background=False)
    cid, data = block("journal first")
    with pytest.raises(OSError, match="disk gone"):
        store.put(cid, data)  # not acknowledged ...
    assert store.pending() == 1  # ... but a crash here could only cause an extra upload
    store.close()
    local.close()


def test_block_over_2_mib_is_refused_and_nothing_is_stored(
    cached: CachedBlockStore, local: LocalBlockStore, fake: FakeKubo
) -> None:
    data = b"\x00" * (MAX_BLOCK_BYTES + 1)
    cid = CID.for_block(data)
    with pytest.raises(IpfsBlockTooLargeError):
        cached.put(cid, data)
    assert not local.has(cid)
    assert cached.pending() == 0
    assert fake.calls == []


def test_pins_wait_for_uploads_and_move_with_heads(cached: CachedBlockStore, fake: FakeKubo) -> None:
    fake.down = True
    a, a_data = block("head a")
    cached.put(a, a_data)
    cached.pin("/orbitdb/x", [a])  # the node is down: recorded only
    fake.down = False
    assert fake.pins == {}
    assert cached.flush() == 0
    assert fake.pins == {a: "recursive"}
    b, b_data = block("head b")
    cached.put(b, b_data)
    cached.pin("/orbitdb/x", [b])
    assert fake.pins == {a: "recursive"}  # recorded; the background thread (here: flush) pins
    assert cached.flush() == 0
    assert fake.pins == {b: "recursive"}  # moved: the new head pinned, then the old one unpinned
    assert cached.pinned("/orbitdb/x") == [b]
    moves = [e for e in fake.endpoints() if e.startswith("pin/")]
    assert moves[-2:] == ["pin/add", "pin/rm"]
    assert "pin/update" not in moves  # Kubo's diff of two log heads can take minutes


class FrozenClock:
    """``time.monotonic`` that moves only when told: backoff intervals measured exactly, without waiting."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def backoff_seconds(cached: CachedBlockStore, clock: FrozenClock) -> float:
    """How long the store backs off from now (to a tenth of a second), found by moving the clock on."""
    start, waited = clock.now, 0.0
    while cached.backing_off:
        assert waited < 3_600, "still backing off after an hour"
        waited = round(waited + 0.1, 1)
        clock.now = start + waited
    return waited


def test_backoff_doubles_while_the_node_keeps_failing(
    cached: CachedBlockStore, fake: FakeKubo, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FrozenClock()
    monkeypatch.setattr(time, "monotonic", clock)
    fake.down = True
    cid, data = block("backoff")
    cached.put(cid, data)
    first = backoff_seconds(cached, clock)  # the interval passes
    assert cached.flush() == 1
    second = backoff_seconds(cached, clock)
    assert first == 60  # retry_interval
    assert second == 120  # doubled
    fake.down = False
    assert cached.flush() == 0
    fake.down = True  # the next failure backs off from the start again: the failures were forgotten
    other, other_data = block("backoff again")
    cached.put(other, other_data)
    assert backoff_seconds(cached, clock) == 60


def test_an_explicit_wait_retries_a_failed_upload_until_its_deadline(
    cached: CachedBlockStore, fake: FakeKubo
) -> None:
    cid, data = block("retried")
    fake.put_failures = 1
    cached.put(cid, data)  # refused once: queued, and the store backs off for a minute (retry_interval)
    assert cached.backing_off
    assert cached.pending() == 1
    fake.put_failures = 2  # two more refusals: the wait tries again after short pauses, not a minute
    started = time.monotonic()
    assert cached.wait_uploaded(10)
    assert time.monotonic() - started < 5
    assert cid in fake.blocks
    assert cached.pending() == 0
    assert not cached.backing_off


def test_a_wait_without_retries_gives_up_at_the_first_failure(
    cached: CachedBlockStore, fake: FakeKubo
) -> None:
    cid, data = block("given up")
    fake.down = True
    cached.put(cid, data)
    started = time.monotonic()
    assert not cached.wait_uploaded(10, retry=False)  # what closing does: a down node holds nothing up
    assert time.monotonic() - started < 5
    assert cached.pending() == 1
    assert isinstance(cached.last_error, IpfsUnreachableError)
    fake.down = False
    assert cached.wait_uploaded(10, retry=False)
    assert cached.pending() == 0


def test_a_pin_may_take_as_long_as_a_walk_of_the_log(fake: FakeKubo) -> None:
    """A recursive pin walks the whole log on the node: it is bounded by the store's pin_timeout."""
    client = KuboClient("http://kubo.test", transport=httpx.MockTransport(fake), timeout=1, block_timeout=0.2)
    head, data = block("a long log's head")
    fake.blocks[head] = data
    with IpfsBlockStore(client) as default, IpfsBlockStore(client, pin_timeout=42) as short:
        default.pin([head])
        short.pin([head], previous=[head])  # already pinned: nothing to add
        other, other_data = block("another head")
        fake.blocks[other] = other_data
        short.pin([other], previous=[head])
    bounds = [params["timeout"] for endpoint, params in fake.calls if endpoint == "pin/add"]
    assert bounds == [["600000ms"], ["42000ms"]]
    assert fake.pins == {other: "recursive"}


def test_a_wait_ends_by_its_deadline_while_a_pin_is_in_flight(
    local: LocalBlockStore, remote: IpfsBlockStore, fake: FakeKubo, tmp_path: Path
) -> None:
    """With the background thread, the calls are made there: a caller's wait (a flush, a close) ends on
    time even when the node takes long over one call, and succeeds once the call is answered."""
    with CachedBlockStore(local, remote, tmp_path, retry_interval=60) as store:
        gate = fake.gates["pin/add"] = threading.Event()
        head, data = block("slowly pinned")
        store.put(head, data)
        store.pin("/orbitdb/slow", [head])
        started = time.monotonic()
        assert not store.wait_uploaded(0.5)  # the pin is held at the node
        assert time.monotonic() - started < 2
        assert store.pins_pending
        gate.set()
        assert store.wait_uploaded(10)
        assert fake.pins == {head: "recursive"}
        assert store.pinned("/orbitdb/slow") == [head]


def test_a_background_wait_retries_and_one_without_retries_gives_up(
    local: LocalBlockStore, remote: IpfsBlockStore, fake: FakeKubo, tmp_path: Path
) -> None:
    with CachedBlockStore(local, remote, tmp_path, retry_interval=60) as store:
        fake.put_failures = 3  # the write's own upload, then two of the background's passes
        cid, data = block("retried in the background")
        store.put(cid, data)
        assert store.backing_off  # a minute, but a waiting caller does not wait it out
        started = time.monotonic()
        assert store.wait_uploaded(10)
        assert time.monotonic() - started < 5
        assert cid in fake.blocks
        fake.down = True
        other, other_data = block("refused")
        store.put(other, other_data)
        started = time.monotonic()
        assert not store.wait_uploaded(10, retry=False)
        assert time.monotonic() - started < 5
        assert store.pending() == 1


def test_unwaited_pins_are_spaced_by_how_long_the_last_took_but_announced_at_once(
    local: LocalBlockStore, remote: IpfsBlockStore, fake: FakeKubo, tmp_path: Path
) -> None:
    """A node walks the whole log it pins: the background thread leaves PIN_SPACING times the last
    pin's duration before moving that name's pin again, unless a caller waits."""
    announced: list[list[CID]] = []
    store = CachedBlockStore(
        local, remote, tmp_path, retry_interval=60, announce=lambda _, heads: announced.append(heads)
    )
    with store:
        gate = fake.gates["pin/add"] = threading.Event()
        timer = threading.Timer(0.3, gate.set)  # the first pin takes at least 0.3 s: spaced by 3 s or more
        a, a_data = block("head a")
        store.put(a, a_data)
        timer.start()
        store.pin("/orbitdb/spaced", [a])
        wait_until(lambda: fake.pins == {a: "recursive"}, 10, "the first pin")
        b, b_data = block("head b")
        store.put(b, b_data)
        store.pin("/orbitdb/spaced", [b])  # wakes the background thread: announced, not pinned yet
        wait_until(lambda: announced == [[a], [b]], 10, "the second heads announced")
        assert fake.pins == {a: "recursive"}
        assert store.pinned("/orbitdb/spaced") == [a]
        assert store.pins_pending
        assert store.wait_uploaded(10)  # a caller waits: pinned at once
        assert fake.pins == {b: "recursive"}
        assert announced == [[a], [b]]  # once each


def test_a_wait_ends_when_the_store_closes(
    local: LocalBlockStore, remote: IpfsBlockStore, fake: FakeKubo, tmp_path: Path
) -> None:
    store = CachedBlockStore(local, remote, tmp_path, retry_interval=60)
    fake.down = True
    cid, data = block("never uploaded")
    store.put(cid, data)
    answers: list[bool] = []
    waiting = threading.Thread(target=lambda: answers.append(store.wait_uploaded(30)))
    puts = fake.endpoints().count("block/put")  # the write's own upload, refused
    started = time.monotonic()
    waiting.start()
    # Only a waited-on pass retries within the minute's backoff: a retry shows the wait has begun.
    wait_until(lambda: fake.endpoints().count("block/put") > puts, 10, "a retry for the waiting caller")
    store.close()
    waiting.join(10)
    assert answers == [False]
    assert time.monotonic() - started < 10  # not the wait's 30 s
    assert not store.wait_uploaded(30)  # closed: at once
    assert time.monotonic() - started < 10
