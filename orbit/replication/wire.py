"""The announcement message: what a replicator publishes on a database's pubsub topic, and its limits.

One small, versioned DAG-CBOR map per message, ``{v: 1, address, heads: [CID], entries: [block],
packs: [{cid, first, count}]}`` (``entries`` and ``packs`` may be absent):

- ``address`` is the database address (also the topic), so a message meant for another database is
  recognised and dropped;
- ``heads`` are the sender's heads (at most :data:`MAX_HEADS`), as CIDv1 dag-cbor sha2-256 links;
- ``entries`` are the raw blocks of some entries (at most :data:`MAX_INLINE`), inlined so that a live
  update or a catch-up needs no fetch: after a local write, the newest new entries
  (:func:`live_inline`); in a catch-up bundle, the entries a peer lacks (:func:`bundle_messages`);
- ``packs`` name the files on the IPFS node that hold the sender's history (:mod:`orbit.ipfs.packs`,
  at most :data:`~orbit.ipfs.packs.MAX_PACKS`): a peer that lacks much reads them through its own
  node (bitswap fetches a file from whoever has it, many blocks at a time), so a newcomer costs the
  swarm one copy of the history, not a broadcast of it. An orbit before packs counts a message with
  them as invalid;
- ``commit`` is the block of the sender's newest signed commit (:class:`~orbit.state.Commit`, at most
  :data:`MAX_ANNOUNCED_COMMIT` bytes), inline rather than named by CID: a receiver checks its signature
  and signer at once, with no fetch (the node may not hold it yet: it is uploaded in the background),
  and a commit is a few hundred bytes. An orbit before commits counts a message with one as invalid;
  a database's announcements carry one only once it has signed a commit;
- ``state_pack`` (only beside ``commit``) names the UnixFS file on the IPFS node that holds what opening
  from that commit reads (:class:`~orbit.ipfs.node_link.StatePack`): a transport hint, unsigned and
  untrusted — a newcomer reads it with one ``cat`` and still checks every block against the commit's
  roots (``orbit.open(address, snapshot=commit, pack=cid)``). An orbit before state packs counts a
  message with one as invalid.

A message is untrusted: :func:`decode_announcement` checks its size (:data:`MAX_MESSAGE_BYTES`, libp2p
gossipsub's default limit), its encoding (canonical DAG-CBOR), its keys, version and address, and the
types and counts of its heads and blocks, and that a commit is well formed, about this database and
signed by its key. The inline blocks are still unverified: the log verifies every entry it admits; and
whether a commit's key may write is for the receiver, who knows the write list, to check.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, decode, encode
from ipfs_log.errors import CodecError
from orbit.errors import CommitError, ReplicationError
from orbit.ipfs.packs import MAX_PACKS, Pack
from orbit.state import Commit

__all__ = [
    "ANNOUNCEMENT_VERSION",
    "BUNDLE_TOTAL",
    "INLINE_BUDGET",
    "LIVE_INLINE",
    "MAX_ANNOUNCED_COMMIT",
    "MAX_HEADS",
    "MAX_HINT_CID_BYTES",
    "MAX_INLINE",
    "MAX_MESSAGE_BYTES",
    "Announcement",
    "bundle_messages",
    "decode_announcement",
    "inbox_topic",
    "live_inline",
]

ANNOUNCEMENT_VERSION: Final = 1
MAX_MESSAGE_BYTES: Final = 1 << 20
"""Largest announcement accepted (libp2p gossipsub's default message limit)."""
MAX_HEADS: Final = 256
MAX_INLINE: Final = 8192
"""Most blocks one message may carry."""
LIVE_INLINE: Final = 64
"""Most new entries a writer inlines in the announcement after a write (the newest first)."""
INLINE_BUDGET: Final = 512 * 1024
"""Bytes of entry blocks one message carries at most (announcement or catch-up bundle)."""
BUNDLE_TOTAL: Final = 32 << 20
"""Bytes of entries sent to a peer that lacks them, as bundles, at most (the rest it fetches)."""
MAX_ANNOUNCED_COMMIT: Final = 16 * 1024
"""Largest commit block an announcement carries (one naming a few hundred heads); a bigger one is left out."""
MAX_HINT_CID_BYTES: Final = 64
"""Largest CID (in bytes) a state pack hint may be."""
_KEYS: Final = frozenset({"v", "address", "heads", "entries", "packs", "commit", "state_pack"})
_FILE_CODECS: Final = frozenset({b"\x55", b"\x70"})  # raw, dag-pb: what a UnixFS file's root is


@dataclass(frozen=True, slots=True)
class Announcement:
    """A peer's heads of one database, with the blocks of its newest entries (untrusted until verified)."""

    address: str
    heads: tuple[CID, ...]
    entries: tuple[bytes, ...] = ()
    packs: tuple[Pack, ...] = ()
    commit: Commit | None = None
    """The sender's newest commit: well formed and signed by its key, not yet checked against writers."""
    state_pack: CID | None = None
    """The file on the node that holds the commit's state pack (an untrusted hint; only with a commit)."""

    def encode(self) -> bytes:
        """Return the message bytes (DAG-CBOR)."""
        body: dict[str, IPLDKind] = {
            "v": ANNOUNCEMENT_VERSION,
            "address": self.address,
            "heads": list(self.heads),
            "entries": list(self.entries),
        }
        if self.packs:
            body["packs"] = [p.to_ipld() for p in self.packs]
        if self.commit is not None:
            body["commit"] = self.commit.block
            if self.state_pack is not None:
                body["state_pack"] = self.state_pack
        return encode(body)


def inbox_topic(address: str, peer: str) -> str:
    """Return the topic of ``peer``'s inbox for the database ``address``: only that peer subscribes to it.

    A replica greets a new direct peer, or answers one that is behind, there: the message goes to that
    peer alone (one hop), not to every subscriber of the database's topic. What arrives in an inbox is
    the same announcement as on the topic, checked the same way (anyone may publish there).
    """
    return f"{address}/inbox/{peer}"


def decode_announcement(data: bytes, address: str) -> Announcement:
    """Decode and check a pubsub message: a well-formed announcement of the database ``address``.

    Raises:
        ReplicationError: the message is oversize, not canonical DAG-CBOR, not an announcement of
            this version and database, or holds malformed or too many heads or blocks.
    """
    if len(data) > MAX_MESSAGE_BYTES:
        raise ReplicationError(f"message of {len(data)} bytes is over the {MAX_MESSAGE_BYTES}-byte limit")
    try:
        body = decode(data)
    except CodecError as e:
        raise ReplicationError(f"message is not DAG-CBOR: {e}") from e
    if not isinstance(body, dict) or not {"v", "address", "heads"} <= body.keys() <= _KEYS:
        raise ReplicationError(
            "message is not an announcement {v, address, heads, entries?, packs?, commit?, state_pack?}"
        )
    if body["v"] != ANNOUNCEMENT_VERSION:
        raise ReplicationError(f"announcement version {body['v']!r} is not {ANNOUNCEMENT_VERSION}")
    if body["address"] != address:
        raise ReplicationError(f"announcement is for another database ({str(body['address'])[:80]!r})")
    heads, entries = body["heads"], body.get("entries", [])
    if not isinstance(heads, list) or len(heads) > MAX_HEADS:
        raise ReplicationError(f"an announcement names at most {MAX_HEADS} heads")
    if not all(type(h) is CID and h.is_entry_cid for h in heads):
        raise ReplicationError("announced heads must be CIDv1 dag-cbor sha2-256 links")
    if not isinstance(entries, list) or len(entries) > MAX_INLINE:
        raise ReplicationError(f"an announcement inlines at most {MAX_INLINE} blocks")
    if not all(type(b) is bytes for b in entries):
        raise ReplicationError("inline entries must be byte strings")
    listed = body.get("packs", [])
    if not isinstance(listed, list) or len(listed) > MAX_PACKS:
        raise ReplicationError(f"an announcement names at most {MAX_PACKS} packs")
    packs = [Pack.from_ipld(p) for p in listed]
    if None in packs:
        raise ReplicationError("a pack must be {cid: CID, first: int >= 0, count: int > 0}")
    return Announcement(
        address,
        tuple(heads),  # type: ignore[arg-type]
        tuple(entries),  # type: ignore[arg-type]
        tuple(p for p in packs if p is not None),
        _announced_commit(body, address),
        _state_pack_hint(body),
    )


def _state_pack_hint(body: dict[str, IPLDKind]) -> CID | None:
    """The state pack an announcement names beside its commit, checked for form only, or None if absent.

    Raises:
        ReplicationError: it comes without a commit, or is not a CID of a file (raw or dag-pb) of at
            most :data:`MAX_HINT_CID_BYTES` bytes.
    """
    if "state_pack" not in body:
        return None
    cid = body["state_pack"]
    if "commit" not in body:
        raise ReplicationError("a state pack is named only beside the commit it holds")
    if (
        type(cid) is not CID
        or len(bytes(cid)) > MAX_HINT_CID_BYTES
        or (cid.version != 0 and bytes(cid)[1:2] not in _FILE_CODECS)
    ):
        raise ReplicationError(
            f"a state pack is a file's CID (raw or dag-pb) of at most {MAX_HINT_CID_BYTES} bytes"
        )
    return cid


def _announced_commit(body: dict[str, IPLDKind], address: str) -> Commit | None:
    """The commit an announcement carries, checked (its signature and database), or None if absent.

    Raises:
        ReplicationError: it is not a byte string of at most :data:`MAX_ANNOUNCED_COMMIT` bytes, or not
            a well-formed commit of ``address`` signed by its key.
    """
    if "commit" not in body:
        return None
    block = body["commit"]
    if type(block) is not bytes or len(block) > MAX_ANNOUNCED_COMMIT:
        raise ReplicationError(f"an announced commit is a block of at most {MAX_ANNOUNCED_COMMIT} bytes")
    try:
        return Commit.from_block(block, address=address)
    except CommitError as e:
        raise ReplicationError(f"the announced commit is refused: {e}") from e


def live_inline(blocks: Sequence[bytes]) -> tuple[bytes, ...]:
    """Pick the blocks an announcement after a write inlines: the newest first, within the limits.

    Args:
        blocks: the blocks of the new local entries, oldest first.

    Returns:
        At most :data:`LIVE_INLINE` blocks of at most :data:`INLINE_BUDGET` bytes in all, newest first.
    """
    inline: list[bytes] = []
    size = 0
    for block in reversed(blocks):
        if len(inline) == LIVE_INLINE or size + len(block) > INLINE_BUDGET:
            break
        inline.append(block)
        size += len(block)
    return tuple(inline)


def bundle_messages(address: str, blocks: Iterable[bytes], heads: Sequence[CID]) -> Iterator[Announcement]:
    """Split entry blocks into catch-up messages, lazily: each within the limits, the last naming ``heads``.

    Every message but the last carries no heads (a receiver keeps its blocks until an announcement
    names heads that reach them); the last one always comes, with the blocks left over (maybe none).
    """
    chunk: list[bytes] = []
    size = 0
    for block in blocks:
        if chunk and (size + len(block) > INLINE_BUDGET or len(chunk) == MAX_INLINE):
            yield Announcement(address, (), tuple(chunk))
            chunk, size = [], 0
        chunk.append(block)
        size += len(block)
    yield Announcement(address, tuple(heads), tuple(chunk))
