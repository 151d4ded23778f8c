"""OrbitDB JS 4.0.0 interop against the vectors @orbitdb/core produced (orbitdb-js-4.0.0.json).

Every vector decodes, re-encodes byte-equal, hashes to its CID and verifies; the two-writer log orders
as OrbitDB's values() did; entries and identities written by orbit with the vectors' keys are byte-equal
to OrbitDB's; and tampered copies are rejected with the specific error for what was tampered with.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from ipfs_log import (
    CID,
    BlockNotFoundError,
    ClockError,
    EntryDecodeError,
    EntryRejectedError,
    HashMismatchError,
    IdentityError,
    InvalidIdentityError,
    InvalidSignatureError,
    LogIdMismatchError,
    MemoryBlockStore,
    PermissionDeniedError,
    SignerMismatchError,
)
from ipfs_log.codec import IPLDKind, decode, encode
from ipfs_log.entry import Limits
from ipfs_log.orbitdb import (
    IdentityWriteList,
    OrbitEntry,
    OrbitIdentity,
    OrbitLog,
    OrbitWriter,
    SigningKey,
    cid_to_hash,
    hash_to_cid,
    verify_signature,
)
from ipfs_log.orbitdb.keys import CURVE_ORDER
from orbit.car import car_bytes
from orbit.errors import DatabaseError, UnknownAddressError, UnknownStoreTypeError
from orbit.orbitdb.compat import (
    IPFSAccessController,
    OrbitDBDatabase,
    OrbitDBManifest,
    orbitdb_address,
    parse_orbitdb_address,
)

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "orbitdb-js-4.0.0.json").read_text())
KEYS = VECTORS["keys"]
IDENTITIES = VECTORS["identities"]
FIXTURE = VECTORS["log_fixture"]
LOG_ID = FIXTURE["logId"]
BY_HASH = {e["hash"]: e for e in FIXTURE["entries"]}


def writer(name: str) -> OrbitWriter:
    keys = KEYS[name]
    return OrbitWriter.from_keys(
        SigningKey.from_hex(keys["id_key_private_hex"]), SigningKey.from_hex(keys["signing_key_private_hex"])
    )


USER_A, USER_B = writer("userA"), writer("userB")
MALLORY = OrbitWriter.from_keys(SigningKey(b"m" * 32), SigningKey(b"n" * 32))


def entry_block(hash_: str) -> bytes:
    return bytes.fromhex(BY_HASH[hash_]["bytes_hex"])


def fixture_store() -> MemoryBlockStore:
    """Every block of the fixture log and both identities."""
    store = MemoryBlockStore()
    for e in FIXTURE["entries"]:
        store.put(hash_to_cid(e["hash"]), bytes.fromhex(e["bytes_hex"]))
    for ident in IDENTITIES.values():
        store.put(hash_to_cid(ident["hash"]), bytes.fromhex(ident["dag_cbor_hex"]))
    return store


def head_hash() -> str:
    return str(FIXTURE["values_order"][-1])


# ---------------------------------------------------------------------------- the vectors verify


@pytest.mark.parametrize("name", sorted(IDENTITIES))
def test_identity_vector_decodes_reencodes_and_verifies(name: str) -> None:
    vector = IDENTITIES[name]
    block = bytes.fromhex(vector["dag_cbor_hex"])
    cid = hash_to_cid(vector["hash"])
    assert bytes(cid).hex() == vector["cid"]["cid_bytes_hex"]
    assert hashlib.sha256(block).hexdigest() == vector["cid"]["digest_hex"]
    assert str(cid) == vector["cid"]["base32_form"]
    ident = OrbitIdentity.from_block(cid, block)
    assert encode(decode(block)) == block
    obj = vector["object"]
    assert (ident.id, ident.public_key) == (obj["id"], obj["publicKey"])
    assert (ident.id_signature, ident.public_key_signature) == (
        obj["signatures"]["id"],
        obj["signatures"]["publicKey"],
    )
    assert ident.id == KEYS[name]["id_key_public_compressed_hex"]
    assert ident.public_key == KEYS[name]["signing_key_public_compressed_hex"]
    # the chain exactly as OrbitDB checks it
    assert verify_signature(ident.public_key, ident.id.encode(), ident.id_signature)
    assert verify_signature(
        ident.id, (ident.public_key + ident.id_signature).encode(), ident.public_key_signature
    )


@pytest.mark.parametrize("name", sorted(IDENTITIES))
def test_identity_written_from_the_keys_is_byte_equal(name: str) -> None:
    ident = writer(name).identity
    assert ident.block.hex() == IDENTITIES[name]["dag_cbor_hex"]
    assert ident.hash == IDENTITIES[name]["hash"]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["hash"][:12])
def test_entry_vector_decodes_reencodes_and_verifies(vector: dict[str, Any]) -> None:
    block = bytes.fromhex(vector["entry_dag_cbor_hex"])
    assert len(block) == vector["entry_dag_cbor_len"]
    cid = hash_to_cid(vector["hash"])
    assert bytes(cid).hex() == vector["cid"]["cid_bytes_hex"]
    assert CID.for_block(block) == cid
    assert cid_to_hash(cid) == vector["hash"]
    entry = OrbitEntry.from_block(cid, block, log_id=LOG_ID)
    assert encode(decode(block)) == block
    want = vector["entry"]
    assert entry.log_id == want["id"]
    assert entry.key == want["key"] == entry.clock_id
    assert entry.sig == want["sig"] == vector["signature"]["der_hex"]
    assert list(entry.next) == want["next"]
    assert list(entry.refs) == want["refs"]
    assert entry.time == want["clock"]["time"]
    assert entry.payload == want["payload"]
    assert entry.identity == want["identity"]
    signed = entry.signing_bytes()
    assert signed.hex() == vector["signed"]["dag_cbor_hex"]
    assert hashlib.sha256(signed).hexdigest() == vector["signed"]["sha256_hex"]
    assert cid_to_hash(CID.for_block(signed)) == vector["signed"]["unsigned_block_cid"]
    assert verify_signature(entry.key, signed, entry.sig)


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["hash"][:12])
def test_entry_written_with_the_vector_keys_is_byte_equal(vector: dict[str, Any]) -> None:
    want = vector["entry"]
    name = "userA" if want["key"] == USER_A.identity.public_key else "userB"
    entry = OrbitEntry.create(
        writer(name),
        want["id"],
        want["payload"],
        time=want["clock"]["time"],
        next=want["next"],
        refs=want["refs"],
    )
    assert entry.block.hex() == vector["entry_dag_cbor_hex"]
    assert entry.hash == vector["hash"]
    r, s = int(vector["signature"]["r_hex"], 16), int(vector["signature"]["s_hex"], 16)
    assert s <= CURVE_ORDER // 2
    assert r > 0


@pytest.mark.parametrize("e", FIXTURE["entries"], ids=lambda e: e["hash"][:12])
def test_every_fixture_entry_verifies(e: dict[str, Any]) -> None:
    block = bytes.fromhex(e["bytes_hex"])
    entry = OrbitEntry.from_block(hash_to_cid(e["hash"]), block, log_id=LOG_ID)
    assert encode(decode(block)) == block
    assert entry.payload == e["payload"]
    assert (entry.clock_id, entry.time) == (e["clock"]["id"], e["clock"]["time"])
    assert (list(entry.next), list(entry.refs)) == (e["next"], e["refs"])


def test_the_log_orders_as_orbitdb_values() -> None:
    log = OrbitLog(LOG_ID, fixture_store())
    admitted = log.join_heads([head_hash()])
    assert [e.hash for e in admitted] == FIXTURE["values_order"]
    assert [e.hash for e in log.values()] == FIXTURE["values_order"]
    assert [e.payload for e in log.values()] == FIXTURE["values_payloads"]
    assert [e.hash for e in log.traverse()] == FIXTURE["values_order"][::-1]
    assert [h.hash for h in log.heads] == [head_hash()]


def test_heads_before_the_merge_are_in_orbitdb_order() -> None:
    log = OrbitLog(LOG_ID, fixture_store())
    log.join_heads(FIXTURE["heads_before_merge"][::-1])  # the order given does not matter
    assert [h.hash for h in log.heads] == FIXTURE["heads_before_merge"]


def test_join_order_does_not_matter() -> None:
    store = fixture_store()
    one, two = OrbitLog(LOG_ID, store), OrbitLog(LOG_ID, store)
    one.join_heads([FIXTURE["values_order"][0]])  # b1 alone, then everything
    one.join_heads([head_hash()])
    for h in FIXTURE["values_order"]:  # oldest first, one at a time
        two.join_heads([h])
    assert [e.hash for e in one.values()] == [e.hash for e in two.values()] == FIXTURE["values_order"]


def test_the_log_written_by_orbit_is_byte_equal_to_orbitdbs() -> None:
    store = MemoryBlockStore()
    a = OrbitLog(LOG_ID, store, writer=USER_A)
    b = OrbitLog(LOG_ID, store, writer=USER_B)
    for payload in ["a1", "a2", "a3", "a4"]:
        a.append(payload)
    b.append(FIXTURE["values_payloads"][0])
    a.join_heads([h.cid for h in b.heads])
    assert [h.hash for h in a.heads] == FIXTURE["heads_before_merge"]
    a.append("merge")
    assert [e.hash for e in a.values()] == FIXTURE["values_order"]
    for e in FIXTURE["entries"]:
        assert a.get(e["hash"]).block.hex() == e["bytes_hex"]
    for vector in VECTORS["vectors"]:
        assert a.get(vector["hash"]).block.hex() == vector["entry_dag_cbor_hex"]
    # the writers stored their identity blocks beside their entries, as OrbitDB does
    for name, ident in IDENTITIES.items():
        assert store.get(hash_to_cid(ident["hash"])).hex() == ident["dag_cbor_hex"], name


# ---------------------------------------------------------------------------- tampered copies


def rebuild(value: dict[str, IPLDKind]) -> tuple[CID, bytes]:
    block = encode(value)
    return CID.for_block(block), block


def vector_value(i: int = 1) -> dict[str, IPLDKind]:
    value = decode(bytes.fromhex(VECTORS["vectors"][i]["entry_dag_cbor_hex"]))
    assert isinstance(value, dict)
    return value


def signed_by(signer: SigningKey, value: dict[str, IPLDKind]) -> dict[str, IPLDKind]:
    """``value`` re-signed by ``signer`` (key and clock.id set to its public key)."""
    value = dict(value)
    value["key"] = signer.public_hex
    value["clock"] = {"id": signer.public_hex, "time": value["clock"]["time"]}  # type: ignore[index, call-overload]
    signed = {k: value[k] for k in ("id", "payload", "next", "refs", "clock", "v")}
    value["sig"] = signer.sign(encode(signed))
    return value


def test_tampered_payload_is_rejected() -> None:
    value = vector_value()
    value["payload"] = "a4, changed"
    with pytest.raises(InvalidSignatureError, match="does not verify"):
        OrbitEntry.from_block(*rebuild(value))


def test_tampered_signature_is_rejected() -> None:
    value = vector_value()
    sig = str(value["sig"])
    value["sig"] = sig[:20] + ("0" if sig[20] != "0" else "1") + sig[21:]
    with pytest.raises(InvalidSignatureError, match="does not verify"):
        OrbitEntry.from_block(*rebuild(value))


def test_high_s_signature_is_rejected() -> None:
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

    value = vector_value()
    r, s = decode_dss_signature(bytes.fromhex(str(value["sig"])))
    value["sig"] = encode_dss_signature(r, CURVE_ORDER - s).hex()  # valid ECDSA, but high-S
    with pytest.raises(InvalidSignatureError, match="low-S"):
        OrbitEntry.from_block(*rebuild(value))


@pytest.mark.parametrize(
    ("sig", "match"),
    [
        ("", "8 to 72 bytes"),
        ("zz" * 35, "lowercase hex"),
        ("3006020180020101", "DER INTEGER is negative"),
        ("300702020001020101", "not minimally encoded"),
        ("3006020101020101" + "00", "DER SEQUENCE"),
        ("300702010102010100", "bytes after"),
        ("3046" + "00" * 69, "DER SEQUENCE"),
    ],
)
def test_malformed_signature_is_rejected(sig: str, match: str) -> None:
    value = vector_value()
    value["sig"] = sig
    with pytest.raises(InvalidSignatureError, match=match):
        OrbitEntry.from_block(*rebuild(value))


def test_uppercase_hex_signature_is_rejected() -> None:
    value = vector_value()
    value["sig"] = str(value["sig"]).upper()
    with pytest.raises(InvalidSignatureError, match="lowercase hex"):
        OrbitEntry.from_block(*rebuild(value))


def test_key_swapped_for_another_valid_key_is_rejected() -> None:
    value = vector_value()
    value["key"] = USER_B.identity.public_key
    value["clock"] = {"id": USER_B.identity.public_key, "time": 4}
    with pytest.raises(InvalidSignatureError, match="does not verify"):
        OrbitEntry.from_block(*rebuild(value))


def test_key_that_is_not_clock_id_is_rejected() -> None:
    value = vector_value()
    value["key"] = USER_B.identity.public_key
    with pytest.raises(SignerMismatchError, match=r"clock.id"):
        OrbitEntry.from_block(*rebuild(value))


def test_identity_swapped_for_another_valid_one_is_rejected() -> None:
    store = fixture_store()
    value = vector_value(0)
    value["identity"] = IDENTITIES["userB"]["hash"]  # identity is not signed: only key binding catches it
    cid, block = rebuild(value)
    entry = OrbitEntry.from_block(cid, block)  # the signature itself is fine
    assert entry.identity == IDENTITIES["userB"]["hash"]
    store.put(cid, block)
    log = OrbitLog(LOG_ID, store)
    with pytest.raises(SignerMismatchError, match="is not the publicKey") as info:
        log.join_heads([cid])
    assert info.value.cid == cid
    assert len(log) == 0


def test_an_unauthorised_writer_cannot_claim_a_permitted_identity() -> None:
    """The OrbitDB 3.x/4.x hole: sign with your own key and name a permitted writer's identity."""
    store = fixture_store()
    value = signed_by(MALLORY.signing_key, vector_value(0))
    value["identity"] = IDENTITIES["userA"]["hash"]
    cid, block = rebuild(value)
    store.put(cid, block)
    OrbitEntry.from_block(cid, block)  # signature valid for its own key: OrbitDB would admit it
    permitted = IdentityWriteList([USER_A.identity.id])
    with pytest.raises(SignerMismatchError, match="is not the publicKey"):
        OrbitLog(LOG_ID, store, access=permitted).join_heads([cid])


def test_writer_not_on_the_write_list_is_refused() -> None:
    log = OrbitLog(LOG_ID, fixture_store(), access=IdentityWriteList([USER_A.identity.id]))
    with pytest.raises(PermissionDeniedError, match=USER_B.identity.id) as info:
        log.join_heads([head_hash()])  # b1 is in the history
    assert info.value.cid == hash_to_cid(FIXTURE["values_order"][0])
    assert len(log) == 0, "a rejected join admits nothing"


def test_own_writer_not_on_the_write_list_cannot_append() -> None:
    log = OrbitLog(LOG_ID, MemoryBlockStore(), writer=MALLORY, access=IdentityWriteList([USER_A.identity.id]))
    with pytest.raises(PermissionDeniedError):
        log.append("x")
    assert len(log) == 0


def test_broken_identity_chain_is_rejected() -> None:
    store = fixture_store()
    ident = decode(bytes.fromhex(IDENTITIES["userA"]["dag_cbor_hex"]))
    assert isinstance(ident, dict)
    sigs = ident["signatures"]
    assert isinstance(sigs, dict)
    ident["signatures"] = {"id": sigs["publicKey"], "publicKey": sigs["id"]}
    id_cid, id_block = rebuild(ident)
    store.put(id_cid, id_block)
    value = vector_value(0)
    value["identity"] = cid_to_hash(id_cid)
    cid, block = rebuild(value)
    store.put(cid, block)
    with pytest.raises(InvalidIdentityError, match=r"signatures.id") as info:
        OrbitLog(LOG_ID, store).join_heads([cid])
    assert info.value.identity == cid_to_hash(id_cid)


def test_identity_whose_id_key_did_not_sign_is_rejected() -> None:
    ident = decode(bytes.fromhex(IDENTITIES["userA"]["dag_cbor_hex"]))
    assert isinstance(ident, dict)
    ident["id"] = USER_B.identity.id  # claims userB's root key
    cid, block = rebuild(ident)
    with pytest.raises(IdentityError, match="signatures"):
        OrbitIdentity.from_block(cid, block)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda v: v.update(type="ethereum"), "not supported"),
        (lambda v: v.pop("type"), "fields must be exactly"),
        (lambda v: v.update(extra=1), "fields must be exactly"),
        (lambda v: v.update(publicKey="04" + "00" * 32), "compressed secp256k1"),
        (lambda v: v.update(signatures={"id": "00"}), "signatures must be exactly"),
    ],
)
def test_malformed_identity_is_rejected(change: Any, match: str) -> None:
    ident = decode(bytes.fromhex(IDENTITIES["userA"]["dag_cbor_hex"]))
    assert isinstance(ident, dict)
    change(ident)
    with pytest.raises(IdentityError, match=match):
        OrbitIdentity.from_block(*rebuild(ident))


def test_identity_block_with_wrong_hash_or_oversize_is_rejected() -> None:
    block = bytes.fromhex(IDENTITIES["userA"]["dag_cbor_hex"])
    with pytest.raises(IdentityError, match="does not hash"):
        OrbitIdentity.from_block(hash_to_cid(IDENTITIES["userB"]["hash"]), block)
    big = encode({"id": "x" * 3000})
    with pytest.raises(IdentityError, match="over the"):
        OrbitIdentity.from_block(CID.for_block(big), big)


def test_missing_identity_block_is_reported() -> None:
    store = MemoryBlockStore()
    cid = hash_to_cid(FIXTURE["values_order"][1])
    store.put(cid, entry_block(FIXTURE["values_order"][1]))
    with pytest.raises(BlockNotFoundError, match="identity block") as info:
        OrbitLog(LOG_ID, store).join_heads([cid])
    assert info.value.cid == hash_to_cid(IDENTITIES["userA"]["hash"])


def test_missing_entry_block_admits_nothing_and_can_be_retried() -> None:
    store = fixture_store()
    partial = MemoryBlockStore()
    a1 = hash_to_cid(FIXTURE["values_order"][1])
    for cid in store:
        if cid != a1:
            partial.put(cid, store.get(cid))
    log = OrbitLog(LOG_ID, partial)
    with pytest.raises(BlockNotFoundError, match="entry block") as info:
        log.join_heads([head_hash()])
    assert info.value.cid == a1
    assert len(log) == 0
    partial.put(a1, store.get(a1))
    assert len(log.join_heads([head_hash()])) == 6


def test_wrong_hash_is_rejected() -> None:
    block = bytes.fromhex(VECTORS["vectors"][0]["entry_dag_cbor_hex"])
    with pytest.raises(HashMismatchError):
        OrbitEntry.from_block(hash_to_cid(VECTORS["vectors"][1]["hash"]), block)


def test_entry_of_another_log_is_rejected() -> None:
    store = fixture_store()
    with pytest.raises(LogIdMismatchError, match="orbitjs-vectors-log"):
        OrbitLog("/orbitdb/another", store).join_heads([head_hash()])


def test_clock_that_skips_ahead_is_rejected() -> None:
    """A permitted writer who picks a huge time would win every last-writer-wins comparison."""
    store = fixture_store()
    value = vector_value(1)  # a4: next=[a3] at time 3
    value = signed_by(USER_A.signing_key, {**value, "clock": {"id": "", "time": 1000}})
    cid, block = rebuild(value)
    store.put(cid, block)
    with pytest.raises(ClockError, match="not 1 \\+ max"):
        OrbitLog(LOG_ID, store).join_heads([cid])


def test_genesis_with_a_later_time_is_rejected() -> None:
    value = signed_by(USER_A.signing_key, {**vector_value(0), "clock": {"id": "", "time": 7}})
    with pytest.raises(EntryDecodeError, match=r"no next has clock.time 1"):
        OrbitEntry.from_block(*rebuild(value))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda v: v.update(v=1), "unsupported entry version"),
        (lambda v: v.pop("identity"), "fields must be exactly"),
        (lambda v: v.update(extra=True), "fields must be exactly"),
        (lambda v: v.update(payload=None), "payload is null"),
        (lambda v: v.update(id=7), "id must be a string"),
        (lambda v: v.update(key=b"\x03" * 33), "key"),
        (lambda v: v.update(clock={"id": v["key"], "time": "4"}), "clock.time"),
        (lambda v: v.update(clock={"id": v["key"], "time": 2**53}), "clock.time"),
        (lambda v: v.update(clock={"id": v["key"]}), "clock must be"),
        (lambda v: v.update(next=[hash_to_cid(str(v["next"][0]))]), "next"),  # a link, not a string
        (lambda v: v.update(next=[str(hash_to_cid(str(v["next"][0])))]), "next"),  # base32, not base58
        (lambda v: v.update(refs=[v["refs"][0], v["refs"][0]]), "names a hash twice"),
        (lambda v: v.update(identity="zdpu"), "identity"),
    ],
)
def test_malformed_entry_is_rejected(change: Any, match: str) -> None:
    value = vector_value(1)
    change(value)
    with pytest.raises(EntryDecodeError, match=match):
        OrbitEntry.from_block(*rebuild(value))


def test_non_canonical_encodings_are_rejected() -> None:
    block = bytes.fromhex(VECTORS["vectors"][0]["entry_dag_cbor_hex"])
    value = decode(block)
    assert isinstance(value, dict)
    items = list(value.items())
    unsorted = b"\xa9" + b"".join(encode(k) + encode(v) for k, v in reversed(items))
    indefinite = b"\xbf" + block[1:] + b"\xff"
    time_field = bytes.fromhex("6474696d6501")  # "time": 1
    assert block.count(time_field) == 1
    long_int = block.replace(time_field, bytes.fromhex("6474696d651801"))  # 1 as a one-byte uint
    b1 = entry_block(FIXTURE["values_order"][0])
    double = bytes.fromhex("fb4004000000000000")  # 2.5 as a float64, the only DAG-CBOR form
    assert b1.count(double) == 1
    half = b1.replace(double, bytes.fromhex("f94100"))  # 2.5 as a float16
    for bad in (unsorted, indefinite, long_int, half, block + b"\x00"):
        with pytest.raises(EntryDecodeError, match=r"canonical|DAG-CBOR"):
            OrbitEntry.from_block(CID.for_block(bad), bad)


def test_oversize_entries_are_rejected() -> None:
    value = signed_by(USER_A.signing_key, {**vector_value(0), "payload": "x" * 2000})
    cid, block = rebuild(value)
    OrbitEntry.from_block(cid, block)
    with pytest.raises(EntryDecodeError, match="over the 1000-byte limit"):
        OrbitEntry.from_block(cid, block, limits=Limits(max_entry_bytes=1000))
    refs = [FIXTURE["values_order"][0]] * 1
    many = {**vector_value(2), "refs": refs * 0 + [cid_to_hash(CID.for_block(bytes([i]))) for i in range(65)]}
    with pytest.raises(EntryDecodeError, match="65 hashes, over the limit of 64"):
        OrbitEntry.from_block(*rebuild(many))


def test_every_rejection_is_an_entry_rejected_error_with_the_cid() -> None:
    value = vector_value()
    value["payload"] = "x"
    cid, block = rebuild(value)
    with pytest.raises(EntryRejectedError) as info:
        OrbitEntry.from_block(cid, block)
    assert info.value.cid == cid
    assert cid_to_hash(cid) in str(info.value) or str(cid) in str(info.value)


# ---------------------------------------------------------------------------- database: manifest, access


def test_manifest_hashes_as_orbitdbs_own_tests_say() -> None:
    """Hashes asserted by @orbitdb/core's test/manifest-store.test.js."""
    plain = OrbitDBManifest("database", "keyvalue", "test/default-access-controller")
    assert cid_to_hash(plain.cid) == "zdpuAn26ookFToGNmpVHgEM71YMULiyS8mAs9UQtV1g6eEyRP"
    meta: IPLDKind = {"name": "database", "description": "more information about the database"}
    with_meta = OrbitDBManifest("database", "keyvalue", "test/default-access-controller", meta)
    assert cid_to_hash(with_meta.cid) == "zdpuAyWPs4yAXS6W7CY4UM68pV2NCpzAJr98aMA4zS5XRq5ga"
    for m in (plain, with_meta):
        assert OrbitDBManifest.from_block(m.cid, m.block) == m
    null_meta = OrbitDBManifest("database", "keyvalue", "x", None, meta_null=True)
    back = OrbitDBManifest.from_block(null_meta.cid, null_meta.block)
    assert back.meta_null
    assert back.block == null_meta.block != OrbitDBManifest("database", "keyvalue", "x").block


def test_address_round_trip() -> None:
    m = OrbitDBManifest("db", "events", "/ipfs/" + IDENTITIES["userA"]["hash"])
    assert m.address == "/orbitdb/" + cid_to_hash(m.cid) == orbitdb_address(m.cid)
    assert parse_orbitdb_address(m.address) == m.cid == parse_orbitdb_address(m.address + "/")
    # the address OrbitDB's own tests use
    addr = "/orbitdb/zdpuAuK3BHpS7NvMBivynypqciYCuy2UW77XYBPUYRnLjnw13"
    assert orbitdb_address(parse_orbitdb_address(addr)) == addr
    for bad in (
        "zdpuAuK3BHpS7NvMBivynypqciYCuy2UW77XYBPUYRnLjnw13",
        "/orbitdb/" + str(m.cid),
        "/orbitdb/x",
        "/ipfs/x",
    ):
        with pytest.raises(DatabaseError, match="not an OrbitDB address"):
            parse_orbitdb_address(bad)


def test_access_controller_block() -> None:
    ac = IPFSAccessController((USER_A.identity.id, USER_B.identity.id))
    assert decode(ac.block) == {"type": "ipfs", "write": [USER_A.identity.id, USER_B.identity.id]}
    assert ac.address == "/ipfs/" + cid_to_hash(ac.cid)
    assert IPFSAccessController.from_block(ac.cid, ac.block) == ac
    assert ac.can_write(USER_A.identity)
    assert not ac.can_write(MALLORY.identity)
    assert IPFSAccessController(("*",)).can_write(MALLORY.identity)
    cases: list[tuple[IPLDKind, str]] = [
        ({"type": "orbitdb", "write": []}, "not an OrbitDB 'ipfs'"),
        ({"type": "ipfs", "write": [1]}, "list of identity ids"),
        ({"type": "ipfs", "write": [], "admin": []}, "not an OrbitDB 'ipfs'"),
    ]
    for value, match in cases:
        block = encode(value)
        with pytest.raises(DatabaseError, match=match):
            IPFSAccessController.from_block(CID.for_block(block), block)
    with pytest.raises(DatabaseError, match="does not hash"):
        IPFSAccessController.from_block(CID.for_block(b"x"), ac.block)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({"name": "a", "type": "events"}, "fields must be"),
        ({"name": 1, "type": "events", "accessController": "/ipfs/x"}, "must be strings"),
        ({"name": "a", "type": "events", "accessController": "/ipfs/x", "x": 1}, "fields must be"),
    ],
)
def test_malformed_manifest_is_rejected(value: dict[str, IPLDKind], match: str) -> None:
    block = encode(value)
    with pytest.raises(DatabaseError, match=match):
        OrbitDBManifest.from_block(CID.for_block(block), block)


# ---------------------------------------------------------------------------- database: state and writes


def test_keyvalue_database_reads_with_orbitdb_semantics() -> None:
    store = MemoryBlockStore()
    db = OrbitDBDatabase.create(store, "kv", "keyvalue", writer=USER_A)
    db.put("a", 1)
    db.put("b", 2)
    db.put("a", 3)
    db.put("c", {"x": [1, 2.5]})
    db.delete("b")
    db.put(1, "number key")  # JavaScript object keys: 1 and "1" are one key
    db.put("1", "string key")
    assert db.keyvalue() == {"a": 3, "c": {"x": [1, 2.5]}, "1": "string key"}
    assert list(db.keyvalue()) == ["a", "c", "1"]  # order of each key's newest PUT, as all() gives
    assert db.get("a") == 3
    assert db.get("b") is None
    assert db.get(1) == "string key"
    reader = OrbitDBDatabase.open(store, db.address)  # heads found by scanning the store
    assert reader.keyvalue() == db.keyvalue()
    assert [e.hash for e in reader.log.values()] == [e.hash for e in db.log.values()]
    assert reader.log.log_id == db.address
    with pytest.raises(DatabaseError, match="keyvalue database"):
        db.add("x")


def test_events_database_and_car_round_trip() -> None:
    store = MemoryBlockStore()
    db = OrbitDBDatabase.create(store, "events", "events", writer=USER_A, write=["*"], meta={"v": 1})
    values: list[IPLDKind] = ["one", {"two": 2}, None]
    hashes = [db.add(v).hash for v in values]
    assert db.events() == list(zip(hashes, values, strict=True))
    car = car_bytes([h.cid for h in db.log.heads], ((cid, store.get(cid)) for cid in store))
    copy = OrbitDBDatabase.from_car(car)
    assert copy.address == db.address
    assert copy.manifest.meta == {"v": 1}
    assert copy.events() == db.events()
    # a second writer (anyone may write) appends to the copy; the first reads it back
    copy = OrbitDBDatabase.from_car(car, address=db.address, writer=USER_B)
    copy.add("from B")
    merged = OrbitDBDatabase.open(copy.store, db.address)
    assert [v for _, v in merged.events()] == ["one", {"two": 2}, None, "from B"]


def test_documents_database() -> None:
    store = MemoryBlockStore()
    db = OrbitDBDatabase.create(store, "docs", "documents", writer=USER_A)
    db.put({"_id": "hello", "n": 1})
    db.put({"_id": "world", "n": 2})
    db.put({"_id": "hello", "n": 3})
    assert db.documents() == {"world": {"_id": "world", "n": 2}, "hello": {"_id": "hello", "n": 3}}
    assert db.query(lambda d: isinstance(d, dict) and d["n"] in (2, 3)) == [
        {"_id": "hello", "n": 3},
        {"_id": "world", "n": 2},
    ]
    db.delete("world")
    assert list(db.documents()) == ["hello"]
    with pytest.raises(DatabaseError, match="no document"):
        db.delete("world")
    with pytest.raises(DatabaseError, match="no field '_id'"):
        db.put({"name": "x"})
    other = OrbitDBDatabase.create(MemoryBlockStore(), "docs", "documents", writer=USER_A, index_by="name")
    other.put({"name": "x"})
    assert other.documents() == {"x": {"name": "x"}}


def test_opening_errors_are_clear() -> None:
    store = MemoryBlockStore()
    db = OrbitDBDatabase.create(store, "kv", "keyvalue", writer=USER_A)
    with pytest.raises(UnknownAddressError, match="no manifest block"):
        OrbitDBDatabase.open(MemoryBlockStore(), db.address)
    only_manifest = MemoryBlockStore()
    only_manifest.put(db.manifest.cid, db.manifest.block)
    with pytest.raises(BlockNotFoundError, match="access controller block not found"):
        OrbitDBDatabase.open(only_manifest, db.address)
    with pytest.raises(UnknownStoreTypeError):
        OrbitDBDatabase.create(store, "c", "counter", writer=USER_A)
    odd = OrbitDBManifest("x", "keyvalue", "/orbitdb/" + IDENTITIES["userA"]["hash"])
    store.put(odd.cid, odd.block)
    with pytest.raises(DatabaseError, match="access controller type 'orbitdb' is not supported"):
        OrbitDBDatabase.open(store, odd.address)
    reader = OrbitDBDatabase.open(store, db.address)
    with pytest.raises(IdentityError, match="without a writer"):
        reader.put("k", "v")
    with pytest.raises(DatabaseError, match="manifests"):
        OrbitDBDatabase.from_car(car_bytes([], []))


def test_database_refuses_entries_from_writers_off_the_list() -> None:
    store = MemoryBlockStore()
    db = OrbitDBDatabase.create(store, "kv", "keyvalue", writer=USER_A)
    db.put("a", 1)
    intruder = OrbitLog(db.address, store, writer=USER_B)  # a log that does not check permission
    intruder.join_heads(db.log.heads)
    intruder.append({"op": "PUT", "key": "a", "value": "mine"})
    with pytest.raises(PermissionDeniedError, match=USER_B.identity.id):
        OrbitDBDatabase.open(store, db.address)
    assert OrbitDBDatabase.open(store, db.address, heads=db.log.heads).keyvalue() == {"a": 1}


@pytest.mark.parametrize("module_name", ["ipfs_log.orbitdb", "orbit.orbitdb.compat"])
def test_public_names_are_exported(module_name: str) -> None:
    import importlib
    import inspect

    module = importlib.import_module(module_name)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", "").startswith(module_name)
    }
    assert public <= set(module.__all__)
    assert all(hasattr(module, name) for name in module.__all__)


# ---------------------------------------------------------------------------- databases written by OrbitDB JS

DATABASES: dict[str, Any] = json.loads(
    (Path(__file__).parent / "orbitdb-js-4.0.0-databases.json").read_text()
)


def databases_store() -> MemoryBlockStore:
    store = MemoryBlockStore()
    for cid, block in DATABASES["blocks"].items():
        store.put(hash_to_cid(cid), bytes.fromhex(block))
    return store


@pytest.mark.parametrize("db_type", sorted(DATABASES["dbs"]))
def test_database_written_by_orbitdb_js_reads_the_same(db_type: str) -> None:
    info = DATABASES["dbs"][db_type]
    store = databases_store()
    db = OrbitDBDatabase.open(store, info["address"], heads=info["heads"])
    assert db.type == db_type
    assert [h.hash for h in db.log.heads] == info["heads"]
    # manifest and access controller blocks written by OrbitDB re-encode byte-equal
    assert store.get(db.manifest.cid) == db.manifest.block
    assert store.get(db.access.cid) == db.access.block
    assert db.access.write == (store_identity_id(store, db),)  # OrbitDB default: the creator's id
    if db_type == "events":
        assert [{"hash": h, "value": v} for h, v in db.events()] == info["all"]
    else:
        # all() items newest-write last, as OrbitDB returns them
        expected = {item["key"]: item["value"] for item in info["all"]}
        assert db.keyvalue() == expected
        assert list(db.keyvalue()) == [item["key"] for item in info["all"]]
    # heads found by scanning the blocks match OrbitDB's
    assert [h.hash for h in OrbitDBDatabase.open(store, info["address"]).log.heads] == info["heads"]


def store_identity_id(store: MemoryBlockStore, db: OrbitDBDatabase) -> str:
    entry = db.log.values()[0]
    return OrbitIdentity.from_block(entry.identity_cid, store.get(entry.identity_cid)).id


def test_orbitdb_js_database_entries_are_not_admitted_under_another_write_list() -> None:
    info = DATABASES["dbs"]["keyvalue"]
    store = databases_store()
    db = OrbitDBDatabase.open(store, info["address"], heads=info["heads"], writer=USER_A)
    with pytest.raises(PermissionDeniedError):
        db.put("mine", 1)  # userA is not on the JS database's write list
