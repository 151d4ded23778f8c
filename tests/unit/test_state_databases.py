"""Databases keep a state tree, sign commits, answer reads with proofs; forged commits and answers fail."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ipfs_log import CID, Identity
from ipfs_log.codec import IPLDKind
from orbit import OrbitDB
from orbit.errors import CommitError, ProofError, StateError, TreeNodeError
from orbit.state import EMPTY_ROOT, Commit, Snapshot, verify
from orbit.state.views import state_items


def test_replicas_agree_on_the_root_and_answer_with_proofs(tmp_path: Path) -> None:
    with OrbitDB(tmp_path / "a") as alice, OrbitDB(tmp_path / "b") as bob:
        writers = [alice.identity.public_key, bob.identity.public_key]
        a = alice.open("kv", type="keyvalue", write=writers)
        b = bob.open("kv", type="keyvalue", write=writers)
        assert a.state_root() == EMPTY_ROOT
        a.put("color", "red")
        b.put("color", "blue")
        b.put("text", "long " * 20)
        a.put("gone", 1)
        a.delete("gone")
        a.sync_from(b)
        b.sync_from(a)
        assert a.state_root() == b.state_root() != EMPTY_ROOT

        answer = b.prove("text")  # an untrusted replica answers ...
        assert answer.present
        assert answer.value == "long " * 20
        commit = answer.verify(writers, address=a.address)  # ... and the client needs only the writers
        assert commit.count == len(a.log)
        assert verify(answer.commit, "text", answer.value, answer.proof, writers=writers).root == commit.root
        absent = b.prove("gone")
        assert not absent.present
        absent.verify(writers)
        assert a.verify_commit(answer.commit).root == a.state_root()

        with pytest.raises(ProofError, match="not the one the tree holds"):
            dataclasses.replace(answer, value="short").verify(writers)
        with pytest.raises(ProofError, match="absent"):
            dataclasses.replace(absent, present=True, value=1).verify(writers)
        with pytest.raises(ProofError, match="present"):
            dataclasses.replace(answer, present=False).verify(writers)
        with pytest.raises(ProofError):  # a proof of another key
            dataclasses.replace(answer, proof=b.prove("color").proof).verify(writers)


def test_forged_commits_are_refused(tmp_path: Path) -> None:
    with OrbitDB(tmp_path / "a") as alice:
        db = alice.open("kv", type="keyvalue")
        db.put("k", 1)
        good = db.commit()
        writers = [alice.identity.public_key]
        mallory = Identity.from_seed(b"m" * 32)
        by_mallory = Commit.create(mallory, db.address, good.heads, good.root, good.count)
        with pytest.raises(CommitError, match="may not write"):
            db.verify_commit(by_mallory)
        with pytest.raises(CommitError, match="may not write"):
            verify(by_mallory.block, "k", 1, db.prove("k").proof, writers=writers)
        flipped = good.block[:-1] + bytes([good.block[-1] ^ 1])  # the last byte of the signature
        with pytest.raises(CommitError, match="signature"):
            Commit.from_block(flipped)
        with pytest.raises(CommitError, match="not of"):
            Commit.from_block(good.block, address="/orbitdb/other")
        with pytest.raises(CommitError, match="hash"):
            Commit.from_block(good.block, cid=by_mallory.cid)
        with pytest.raises(CommitError, match="map"):
            Commit.from_block(b"\xa0")
        with pytest.raises(CommitError, match="canonical"):
            Commit.from_block(b"\xff")

        db.put("k", 2)  # a writer signs a root that is not the state at the heads it names
        lying = Commit.create(alice.identity, db.address, good.heads, db.state_root(), good.count)
        with pytest.raises(CommitError, match="the state at its heads has root"):
            db.verify_commit(lying)
        miscounted = Commit.create(alice.identity, db.address, good.heads, good.root, good.count + 1)
        with pytest.raises(CommitError, match="entries at its heads"):
            db.verify_commit(miscounted)
        assert db.verify_commit(good.block).cid == good.cid
        assert db.commit().prev == good.cid


def test_every_store_type_proves_its_reads(tmp_path: Path) -> None:
    with OrbitDB(tmp_path / "a") as orbit:
        writers = [orbit.identity.public_key]
        events = orbit.open("events", type="eventlog")
        first = events.add({"n": 1})
        events.add("second")
        read = events.prove(first)
        assert read.value == {"n": 1}
        read.verify(writers)
        with pytest.raises(StateError, match="no event"):
            events.prove(Commit.from_block(read.commit).root)  # a CID, not an event's

        counter = orbit.open("visits", type="counter")
        counter.inc(5)
        counter.dec(2)
        read = counter.prove(orbit.identity.public_key)
        assert read.value == 3
        read.verify(writers)

        docs = orbit.open("people", type="documents", index_by="name")
        docs.put({"name": "ada", "born": 1815})
        read = docs.prove("ada")
        assert read.value == {"name": "ada", "born": 1815}
        read.verify(writers)
        assert docs.verify_commit(read.commit).count == 1
        with pytest.raises(StateError, match="not a key"):
            docs.prove(b"bytes")


def test_the_tree_follows_writes_after_it_was_built_and_across_reopen(tmp_path: Path) -> None:
    with OrbitDB(tmp_path / "a") as orbit:
        db = orbit.open("kv", type="keyvalue")
        db.put("a", 1)
        db.state_root()  # built now; later writes are applied incrementally
        with db.batch() as batch:
            for i in range(50):
                batch.put(f"k{i}", i)
        db.delete("a")
        root = db.state_root()
    with OrbitDB(tmp_path / "a") as orbit:
        assert orbit.open("kv", type="keyvalue").state_root() == root  # rebuilt from the checkpoint


def test_table_rows_are_proven_by_primary_key(tmp_path: Path) -> None:
    schema = "CREATE TABLE todos (id TEXT PRIMARY KEY, title TEXT, done INTEGER NOT NULL DEFAULT 0);"
    with OrbitDB(tmp_path / "a") as orbit:
        writers = [orbit.identity.public_key]
        db = orbit.open("todo", type="table", schema=schema)
        db.execute("INSERT INTO todos (id, title) VALUES (?, ?)", ("t1", "milk"))
        db.execute("INSERT INTO todos (id, title) VALUES (?, ?)", ("t2", "eggs"))
        before = db.state_root()
        db.execute("UPDATE todos SET done = 1 WHERE id = ?", ("t1",))
        db.execute("DELETE FROM todos WHERE id = ?", ("t2",))
        assert db.state_root() != before
        read = db.prove(("todos", "t1"))
        assert read.value == {"id": "t1", "title": "milk", "done": 1}
        read.verify(writers)
        gone = db.prove(("todos", "t2"))
        assert not gone.present
        gone.verify(writers)
        assert db.verify_commit(read.commit).root == db.state_root()
        with pytest.raises(StateError, match="not a row key"):
            db.prove(("nope", "t1"))


def test_the_tree_is_saved_beside_the_checkpoint_and_opened_without_a_rebuild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OrbitDB(tmp_path / "a") as orbit:
        db = orbit.open("kv", type="keyvalue")
        for i in range(200):
            db.put(f"k{i}", i)
        root = db.state_root()
        address = db.address
    saved = list((tmp_path / "a" / "state").iterdir())
    assert len(saved) == 1

    def no_rebuild(store: object) -> None:
        raise AssertionError("rebuilt from the index")

    with monkeypatch.context() as patch:
        patch.setattr("orbit.state.views.state_items", no_rebuild)
        with OrbitDB(tmp_path / "a") as orbit:
            db = orbit.open(address, type="keyvalue")
            assert db.state_root() == root  # opened from the saved commit's root
            db.put("k7", "changed")  # nodes read from the block store as the write reaches them
            db.put("new", 1)
            assert db.prove("k7").value == "changed"
            root = db.state_root()
    with OrbitDB(tmp_path / "a") as orbit:
        assert orbit.open(address).state_root() == root

    saved[0].write_bytes(saved[0].read_bytes()[:-1] + b"\x00")  # a forged commit: ignored, rebuilt
    with OrbitDB(tmp_path / "a") as orbit:
        db = orbit.open(address, type="keyvalue")
        assert db.state_root() == root
        db.drop()
    assert not saved[0].exists()


def test_a_key_range_is_answered_with_a_proof_that_it_is_complete(tmp_path: Path) -> None:
    with OrbitDB(tmp_path / "a") as orbit:
        writers = [orbit.identity.public_key]
        db = orbit.open("kv", type="keyvalue")
        for name in ("apple", "apricot", "banana", "blueberry", "cherry"):
            db.put(name, len(name))
        answer = db.prove_range("b", "c")
        assert answer.items == ((b"banana", 6), (b"blueberry", 9))
        answer.verify(writers)
        with pytest.raises(ProofError, match="keys answered"):  # a replica that hides a key
            dataclasses.replace(answer, items=answer.items[:1]).verify(writers)
        with pytest.raises(ProofError, match="value answered"):
            dataclasses.replace(answer, items=((b"banana", 7), (b"blueberry", 9))).verify(writers)
        assert [k for k, _ in db.prove_range().items][:2] == [b"apple", b"apricot"]
        with pytest.raises(StateError, match="range bound"):
            db.prove_range(1, 2)


def test_a_documents_find_is_proven_complete_through_its_index_tree(tmp_path: Path) -> None:
    with OrbitDB(tmp_path / "a") as alice, OrbitDB(tmp_path / "b") as bob:
        writers = [alice.identity.public_key, bob.identity.public_key]
        a = alice.open("people", type="documents", write=writers, indexes=["city"])
        b = bob.open("people", type="documents", write=writers, indexes=["city"])
        a.put({"_id": "ada", "city": "London"})
        a.state_root()  # the trees are built now: what follows is applied incrementally
        assert a.prove_find("city", "London").documents == (("ada", {"_id": "ada", "city": "London"}),)
        b.put({"_id": "alan", "city": "London"})
        b.put({"_id": "kurt", "city": "Vienna"})
        b.put({"_id": "emmy", "city": "Erlangen"})
        a.put({"_id": "emmy", "city": "Göttingen"})  # concurrent: one of the two cities wins
        a.put_many([{"_id": "grace", "city": "London"}, {"_id": "nocity"}])
        a.delete("ada")
        a.sync_from(b)
        b.sync_from(a)
        assert a.state_root() == b.state_root()

        answer = b.prove_find("city", "London")
        assert [key for key, _ in answer.documents] == ["alan", "grace"]
        commit = answer.verify(writers, address=a.address)
        assert dict(commit.indexes).keys() == {"city"}
        assert a.verify_commit(answer.commit).cid == commit.cid
        emmy = a.get("emmy")
        assert emmy is not None
        assert [k for k, _ in a.prove_find("city", emmy["city"]).documents] == ["emmy"]
        assert a.prove_find("city", "Paris").documents == ()
        a.prove_find("city", "Paris").verify(writers)

        with pytest.raises(ProofError, match="not those the index holds"):  # a hidden document
            dataclasses.replace(answer, documents=answer.documents[1:], proofs=answer.proofs[1:]).verify(
                writers
            )
        changed: IPLDKind = {"_id": "alan", "city": "London", "x": 1}
        forged = ((answer.documents[0][0], changed), answer.documents[1])
        with pytest.raises(ProofError, match="not the one the tree holds"):
            dataclasses.replace(answer, documents=forged).verify(writers)
        # another value's proof: its range proof lacks what the other value's range reaches
        with pytest.raises(ProofError, match=r"not those the index holds|lacks node"):
            dataclasses.replace(answer, value="Vienna").verify(writers)
        with pytest.raises(StateError, match="no index"):
            a.prove_find("born", 1815)
        plain = alice.open("plain", type="documents")
        plain.put({"_id": "x"})
        assert plain.commit().indexes == ()  # no index, no indexes field


def test_a_snapshot_reads_the_state_from_trusted_commits_and_an_untrusted_source(tmp_path: Path) -> None:
    with OrbitDB(tmp_path / "a") as alice, OrbitDB(tmp_path / "b") as bob:
        writers = [alice.identity.public_key, bob.identity.public_key]
        a = alice.open("kv", type="keyvalue", write=writers)
        b = bob.open("kv", type="keyvalue", write=writers)
        for i in range(300):
            a.put(f"k{i}", i)
        b.put("long", "x" * 100)  # held as a digest: its block travels beside the nodes
        a.sync_from(b)
        b.sync_from(a)
        a.state_root()
        a.save_checkpoint()  # the tree's nodes and value blocks are now in Alice's block store
        by_alice, by_bob = a.commit(), b.commit()
        source = alice.blocks

        snap = Snapshot(source, address=a.address, writers=writers)
        assert snap.accept([by_alice.block]).root == a.state_root()
        assert snap.get("k7") == 7
        assert snap.get("long") == "x" * 100
        assert snap.get("nope") is None
        light = snap.fetched_bytes
        assert 0 < light < 5_000  # a few paths, not the state
        assert snap.bootstrap() == 301
        assert snap.items() == list(state_items(a.store))  # equals the replica's own state

        quorum = Snapshot(source, address=a.address, writers=writers, trust="quorum:2")
        with pytest.raises(CommitError, match="vouched for by 2"):
            quorum.accept([by_alice.block, by_alice.block])  # one writer twice is one voice
        assert len(quorum.accept([by_alice.block, by_bob.block]).root) == 36
        assert len(quorum.commits) == 2

        mallory = Identity.from_seed(b"m" * 32)
        forged = Commit.create(mallory, a.address, by_alice.heads, by_alice.root, by_alice.count)
        with pytest.raises(CommitError, match="1 commits refused"):
            Snapshot(source, address=a.address, writers=writers).accept([forged.block])
        with pytest.raises(CommitError):
            Snapshot(source, address="/orbitdb/other", writers=writers).accept([by_alice.block])
        with pytest.raises(StateError, match="quorum"):
            Snapshot(source, address=a.address, writers=writers, trust="replay")


def test_a_snapshot_refuses_a_forged_node_from_its_source(tmp_path: Path) -> None:
    with OrbitDB(tmp_path / "a") as alice:
        writers = [alice.identity.public_key]
        db = alice.open("kv", type="keyvalue")
        for i in range(50):
            db.put(f"k{i}", i)
        commit = db.commit()
        db.save_checkpoint()
        blocks = alice.blocks

        class Lying:
            def get(self, cid: CID) -> bytes:
                block = blocks.get(cid)
                return block if cid != commit.root else block[:-1] + bytes([block[-1] ^ 1])

            def put(self, cid: CID, block: bytes) -> None:
                raise AssertionError("a snapshot writes nothing to its source")

        snap = Snapshot(Lying(), address=db.address, writers=writers)
        snap.accept([commit.block])
        with pytest.raises(TreeNodeError, match="do not hash"):
            snap.get("k1")


def test_a_car_file_carries_the_state_and_a_snapshot_opens_it_alone(tmp_path: Path) -> None:
    with OrbitDB(tmp_path / "a") as alice, OrbitDB(tmp_path / "b") as bob:
        writers = [alice.identity.public_key]
        db = alice.open("kv", type="keyvalue")
        for i in range(100):
            db.put(f"k{i}", i)
        db.put("long", "y" * 64)
        plain, with_state = tmp_path / "plain.car", tmp_path / "state.car"
        assert db.export_car(plain) == 102  # the manifest and the entries, as before
        assert db.export_car(with_state, state=True) > 103
        snap = Snapshot.from_car(with_state.read_bytes(), writers=writers)
        assert snap.root == db.state_root()
        assert snap.get("long") == "y" * 64
        assert snap.bootstrap() == 101
        with pytest.raises(CommitError, match="no commit"):
            Snapshot.from_car(plain.read_bytes(), writers=writers)
        with pytest.raises(CommitError):  # signed, but not by a writer the reader trusts
            Snapshot.from_car(with_state.read_bytes(), writers=[bob.identity.public_key])
        copy = bob.open("kv", type="keyvalue", write=writers)  # the commit is a root, not a head
        assert len(copy.import_car(with_state)) == 101
        assert copy.state_root() == db.state_root()


def test_commits_at_a_cadence(tmp_path: Path) -> None:
    with OrbitDB(tmp_path / "a") as orbit:
        db = orbit.open("kv", type="keyvalue")
        db.commit_every = 10
        for i in range(20):
            db.put(f"k{i}", i)
        at_20 = Commit.from_block(db.prove("k0").commit)  # the cadence's commit: prove signs none
        assert at_20.count == 20
        assert at_20.prev is not None  # the commit at 10 entries
        for i in range(5):
            db.put(f"more{i}", i)
        at_25 = Commit.from_block(db.prove("k0").commit)  # behind the state: prove signs a new one
        assert (at_25.count, at_25.prev) == (25, at_20.cid)
