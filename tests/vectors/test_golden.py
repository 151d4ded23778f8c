"""Golden vectors: our entry format must not drift, and our codec must agree with OrbitDB JS's bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ipfs_log import CID, Entry, Identity, Log, MemoryBlockStore, WriteList, key_from_did
from ipfs_log.codec import decode, encode
from tests.vectors import make_golden

HERE = Path(__file__).parent
GOLDEN: dict[str, Any] = json.loads((HERE / "golden.json").read_text(encoding="utf-8"))
ORBITDB_JS: dict[str, Any] = json.loads((HERE / "orbitdb-js-4.0.0.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------------ our format


def test_golden_entries_are_reproduced_exactly() -> None:
    """Rebuilding the fixed history gives the same blocks and CIDs: any format change shows here."""
    rebuilt = make_golden.build()
    assert len(rebuilt["entries"]) == len(GOLDEN["entries"]) > 5
    for ours, golden in zip(rebuilt["entries"], GOLDEN["entries"], strict=True):
        assert ours == golden, golden["description"]
    assert rebuilt == GOLDEN


@pytest.mark.parametrize("vector", GOLDEN["entries"], ids=lambda v: v["description"])
def test_golden_entry_verifies(vector: dict[str, Any]) -> None:
    block = bytes.fromhex(vector["block_hex"])
    cid = CID.parse(vector["cid"])
    assert CID.parse(vector["cid_base58btc"]) == cid
    assert CID.for_block(block) == cid
    assert str(cid) == vector["cid"]
    assert encode(decode(block)) == block
    writers = WriteList([key_from_did(w["did"]) for w in GOLDEN["writers"].values()])
    entry = Entry.from_block(cid, block, log_id=GOLDEN["log_id"], access=writers)
    assert entry.time == vector["time"]
    assert entry.key == key_from_did(vector["writer"])
    assert [str(c) for c in entry.next] == vector["next"]
    assert [str(c) for c in entry.refs] == vector["refs"]
    assert entry.block == block


def test_golden_writers_match_their_seeds() -> None:
    for w in GOLDEN["writers"].values():
        assert Identity.from_seed(bytes.fromhex(w["seed_hex"])).did == w["did"]


def test_golden_log_joins_to_the_recorded_order() -> None:
    store = MemoryBlockStore()
    for v in GOLDEN["entries"]:
        block = bytes.fromhex(v["block_hex"])
        store.put(CID.for_block(block), block)
    writers = WriteList([key_from_did(w["did"]) for w in GOLDEN["writers"].values()])
    reader = Identity.from_seed(bytes(32))
    heads = [CID.parse(c) for c in GOLDEN["heads"]]
    log = Log.load(reader, store, heads, log_id=GOLDEN["log_id"], access=writers)
    assert [str(e.cid) for e in log] == GOLDEN["order"]
    assert [str(c) for c in log.head_cids] == GOLDEN["heads"]
    assert len(log) == len(GOLDEN["entries"])


# ------------------------------------------------------------------ OrbitDB JS 4.0.0


def orbitdb_blocks() -> list[tuple[str, str, str]]:
    """Every (description, DAG-CBOR hex, CID text) pair in the OrbitDB JS vectors."""
    pairs = []
    for name, ident in ORBITDB_JS["identities"].items():
        assert ident["hash"] == ident["cid"]["string"]
        pairs.append((f"identity {name}", ident["dag_cbor_hex"], ident["hash"]))
    for i, v in enumerate(ORBITDB_JS["vectors"]):
        assert v["hash"] == v["cid"]["string"]
        pairs.append((f"entry {i}", v["entry_dag_cbor_hex"], v["hash"]))
        pairs.append(
            (f"entry {i} signed bytes", v["signed"]["dag_cbor_hex"], v["signed"]["unsigned_block_cid"])
        )
    for i, e in enumerate(ORBITDB_JS["log_fixture"]["entries"]):
        pairs.append((f"log fixture entry {i}", e["bytes_hex"], e["hash"]))
    return pairs


ORBITDB_BLOCKS = orbitdb_blocks()


def test_orbitdb_vectors_are_all_found() -> None:
    assert len(ORBITDB_BLOCKS) == 2 + 3 * 2 + 6


@pytest.mark.parametrize(
    ("hex_", "cid_text"), [p[1:] for p in ORBITDB_BLOCKS], ids=[p[0] for p in ORBITDB_BLOCKS]
)
def test_orbitdb_js_block(hex_: str, cid_text: str) -> None:
    block = bytes.fromhex(hex_)
    value = decode(block)
    assert isinstance(value, dict)
    assert encode(value) == block
    cid = CID.parse(cid_text)
    assert CID.for_block(block) == cid
    assert cid.encode("base58btc") == cid_text


def test_orbitdb_js_entry_fields_decode_as_recorded() -> None:
    for v in ORBITDB_JS["vectors"]:
        value = decode(bytes.fromhex(v["entry_dag_cbor_hex"]))
        assert isinstance(value, dict)
        expected = v["entry"]
        assert value["v"] == expected["v"] == 2
        assert value["id"] == expected["id"]
        assert value["clock"] == expected["clock"]
        assert value["payload"] == expected["payload"]
        # OrbitDB JS writes next/refs as base58btc strings, not IPLD links
        assert value["next"] == expected["next"]
        assert value["refs"] == expected["refs"]
        for text in [*expected["next"], *expected["refs"]]:
            assert CID.parse(text).encode("base58btc") == text
    for e in ORBITDB_JS["log_fixture"]["entries"]:
        value = decode(bytes.fromhex(e["bytes_hex"]))
        assert isinstance(value, dict)
        assert value["payload"] == e["payload"]
        assert value["clock"] == e["clock"]


def test_orbitdb_js_entries_are_not_our_entries() -> None:
    """A different format (v 2, secp256k1, identity field): decodable DAG-CBOR, but never an entry here."""
    from ipfs_log import EntryDecodeError

    v = ORBITDB_JS["vectors"][0]
    with pytest.raises(EntryDecodeError):
        Entry.from_block(CID.parse(v["hash"]), bytes.fromhex(v["entry_dag_cbor_hex"]))
