"""Announcements are untrusted: strict decoding, bounded sizes, one error type naming what was wrong."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipfs_log import CID, encode
from ipfs_log.codec import IPLDKind
from orbit import ReplicationError
from orbit.ipfs.packs import MAX_PACKS, Pack
from orbit.replication.wire import (
    MAX_HEADS,
    MAX_INLINE,
    MAX_MESSAGE_BYTES,
    Announcement,
    decode_announcement,
)

ADDRESS = "/orbitdb/zdpuAtest"
HEAD = CID.for_block(encode({"x": 1}))
PACK: dict[str, IPLDKind] = {"cid": HEAD, "first": 0, "count": 10}


def test_round_trip() -> None:
    message = Announcement(ADDRESS, (HEAD,), (b"\xa0",))
    assert decode_announcement(message.encode(), ADDRESS) == message
    empty = Announcement(ADDRESS, ())
    assert decode_announcement(empty.encode(), ADDRESS) == empty
    packed = Announcement(ADDRESS, (HEAD,), (), (Pack(HEAD, 0, 300), Pack(HEAD, 300, 128)))
    assert decode_announcement(packed.encode(), ADDRESS) == packed


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\xff\x00garbage", "not DAG-CBOR"),
        (encode([1, 2]), "not an announcement"),
        (encode({"v": 1, "address": ADDRESS}), "not an announcement"),
        (encode({"v": 1, "address": ADDRESS, "heads": [], "extra": 1}), "not an announcement"),
        (encode({"v": 2, "address": ADDRESS, "heads": [HEAD]}), "version 2"),
        (encode({"v": 1, "address": "/orbitdb/zother", "heads": [HEAD]}), "another database"),
        (encode({"v": 1, "address": ADDRESS, "heads": "x"}), "at most"),
        (encode({"v": 1, "address": ADDRESS, "heads": [HEAD] * (MAX_HEADS + 1)}), "at most"),
        (encode({"v": 1, "address": ADDRESS, "heads": [bytes(HEAD)]}), "links"),
        (encode({"v": 1, "address": ADDRESS, "heads": [CID(b"\x01\x55" + bytes(HEAD)[2:])]}), "dag-cbor"),
        (encode({"v": 1, "address": ADDRESS, "heads": [HEAD], "entries": ["text"]}), "byte strings"),
        (encode({"v": 1, "address": ADDRESS, "heads": [], "entries": [b""] * (MAX_INLINE + 1)}), "at most"),
        (b"\x00" * (MAX_MESSAGE_BYTES + 1), "over the"),
        (encode({"v": 1, "address": ADDRESS, "heads": [], "packs": "x"}), "packs"),
        (encode({"v": 1, "address": ADDRESS, "heads": [], "packs": [PACK] * (MAX_PACKS + 1)}), "packs"),
        (encode({"v": 1, "address": ADDRESS, "heads": [], "packs": [{**PACK, "count": 0}]}), "a pack"),
        (encode({"v": 1, "address": ADDRESS, "heads": [], "packs": [{**PACK, "first": -1}]}), "a pack"),
        (encode({"v": 1, "address": ADDRESS, "heads": [], "packs": [{**PACK, "cid": "bafy"}]}), "a pack"),
        (encode({"v": 1, "address": ADDRESS, "heads": [], "packs": [{**PACK, "x": 1}]}), "a pack"),
    ],
)
def test_malformed_messages_are_refused(data: bytes, match: str) -> None:
    with pytest.raises(ReplicationError, match=match):
        decode_announcement(data, ADDRESS)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_as_another_error(data: bytes) -> None:
    with contextlib.suppress(ReplicationError):
        decode_announcement(data, ADDRESS)
