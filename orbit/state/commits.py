"""Signed commits: a writer's statement that a database's state at some heads has a given root.

A commit is one DAG-CBOR block (a map, keys in canonical order)::

    {v: 1, address: "/orbitdb/…", heads: [entry CIDs, sorted by bytes], root: tree root CID,
     count: entries reachable from the heads, prev: the writer's previous commit CID or null,
     key: the writer's Ed25519 public key (32 bytes), sig: Ed25519 signature (64 bytes),
     indexes: {field: index tree root CID},        (documents with indexes only; absent otherwise)
     winners: winners tree root CID}                (keyvalue and documents; absent otherwise)

signed over the same map without ``sig`` (:meth:`Commit.signing_bytes`). The winners tree maps each
key ever written (deleted ones too) to the 32-byte digest of the entry whose operation decides it:
what a replica opened from the commit needs to merge later entries by last-writer-wins as one that
replayed the history does (see :mod:`orbit.state.bootstrap`). It proves who vouched for
which root at which heads; that the root *is* the state at those heads is checked by recomputing it
(the database's ``verify_commit``), and a reader who trusts the writer checks a read against the root
with a proof alone (:func:`verify_read`).

>>> from ipfs_log import Identity
>>> from orbit.state.nodes import EMPTY_ROOT
>>> alice = Identity.from_seed(b"a" * 32)
>>> commit = Commit.create(alice, "/orbitdb/x", [], EMPTY_ROOT, 0)
>>> Commit.from_block(commit.block, writers=[alice.public_key]) == commit
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, decode, encode
from ipfs_log.errors import CodecError
from ipfs_log.identity import Identity, key_from_did
from ipfs_log.identity import verify as verify_signature
from orbit.errors import CommitError, ProofError
from orbit.state.proofs import verify as verify_proof
from orbit.state.proofs import verify_range
from orbit.state.tree import successor
from orbit.state.values import value_matches

__all__ = [
    "COMMIT_VERSION",
    "MAX_COMMIT_BYTES",
    "Commit",
    "FindProof",
    "RangeProof",
    "ReadProof",
    "verify_read",
]

COMMIT_VERSION: Final = 3
"""3: the state tree stores each group as balanced one-key blocks (2: one node a group, layers in quarters
of a bit; 1: whole bits), so an older root is another tree."""
MAX_COMMIT_BYTES: Final = 64 * 1024
"""Largest commit block accepted (a commit names its heads, usually a handful)."""
_FIELDS: Final = frozenset({"v", "address", "heads", "root", "count", "prev", "key", "sig"})


@dataclass(frozen=True, slots=True)
class Commit:
    """A signed commit, as created or as read back and checked."""

    address: str
    heads: tuple[CID, ...]
    root: CID
    count: int
    prev: CID | None
    key: bytes
    """The signer's Ed25519 public key."""
    sig: bytes
    block: bytes
    """The commit's DAG-CBOR block."""
    cid: CID
    indexes: tuple[tuple[str, CID], ...] = ()
    """The root of each documents index tree, by field (sorted)."""
    winners: CID | None = None
    """The root of the winners tree (keyvalue and documents), else None."""

    @staticmethod
    def _body(
        address: str,
        heads: Sequence[CID],
        root: CID,
        count: int,
        prev: CID | None,
        key: bytes,
        indexes: Sequence[tuple[str, CID]] = (),
        winners: CID | None = None,
    ) -> dict[str, IPLDKind]:
        body: dict[str, IPLDKind] = {
            "v": COMMIT_VERSION,
            "address": address,
            "heads": list(heads),
            "root": root,
            "count": count,
            "prev": prev,
            "key": key,
        }
        if indexes:
            body["indexes"] = dict(indexes)
        if winners is not None:
            body["winners"] = winners
        return body

    def signing_bytes(self) -> bytes:
        """The bytes the signature covers: the commit's DAG-CBOR without ``sig``."""
        return encode(
            self._body(
                self.address,
                self.heads,
                self.root,
                self.count,
                self.prev,
                self.key,
                self.indexes,
                self.winners,
            )
        )

    @classmethod
    def create(
        cls,
        identity: Identity,
        address: str,
        heads: Iterable[CID],
        root: CID,
        count: int,
        prev: CID | None = None,
        indexes: Mapping[str, CID] | None = None,
        winners: CID | None = None,
    ) -> Commit:
        """Sign a commit of ``root`` at ``heads`` (``count`` entries) with ``identity``."""
        ordered = tuple(sorted(set(heads)))
        roots = tuple(sorted((indexes or {}).items()))
        body = cls._body(address, ordered, root, count, prev, identity.public_key, roots, winners)
        sig = identity.sign(encode(body))
        block = encode({**body, "sig": sig})
        return cls(
            address, ordered, root, count, prev, identity.public_key, sig, block, CID.for_block(block), roots,
            winners,
        )  # fmt: skip

    @classmethod
    def from_block(
        cls,
        block: bytes,
        *,
        cid: CID | None = None,
        writers: Iterable[bytes | str] | None = None,
        address: str | None = None,
    ) -> Commit:
        """Check a commit from anywhere and return it.

        Args:
            block: the commit's bytes.
            cid: the CID it was asked for, if any (the bytes must hash to it).
            writers: the public keys (bytes or ``did:key``) whose commits are accepted, or ``"*"`` among
                them for anyone's; None checks the signature only.
            address: the database the commit must be about, if given.

        Raises:
            CommitError: the block is too large, not canonical, malformed, not signed by its key, not
                by a writer, about another database, or does not hash to ``cid``.
        """
        if type(block) is not bytes or len(block) > MAX_COMMIT_BYTES:
            raise CommitError(f"a commit is at most {MAX_COMMIT_BYTES} bytes", cid)
        own = CID.for_block(block)
        if cid is not None and cid != own:
            raise CommitError("the bytes do not hash to the CID", cid)
        try:
            value = decode(block)
        except CodecError as e:
            raise CommitError(f"not canonical DAG-CBOR ({e})", own) from e
        if (
            type(value) is not dict
            or value.keys() - {"indexes", "winners"} != _FIELDS
            or value["v"] != COMMIT_VERSION
        ):
            raise CommitError(
                f"a commit is a map of {sorted(_FIELDS)} (and indexes) with v = {COMMIT_VERSION}", own
            )
        indexes = value.get("indexes", {})
        if (
            type(indexes) is not dict
            or ("indexes" in value and not indexes)
            or not all(type(r) is CID and r.is_entry_cid for r in indexes.values())
        ):
            raise CommitError("indexes is a non-empty map of field to tree root", own)
        roots = tuple((f, r) for f, r in sorted(indexes.items()) if type(r) is CID)
        winners = value.get("winners")
        if winners is not None and (type(winners) is not CID or not winners.is_entry_cid):
            raise CommitError("winners is a tree root", own)
        addr, heads, root, count = value["address"], value["heads"], value["root"], value["count"]
        prev, key, sig = value["prev"], value["key"], value["sig"]
        if (
            type(addr) is not str
            or type(heads) is not list
            or not all(type(h) is CID and h.is_entry_cid for h in heads)
            or type(root) is not CID
            or not root.is_entry_cid
            or type(count) is not int
            or count < 0
            or (prev is not None and type(prev) is not CID)
            or type(key) is not bytes
            or type(sig) is not bytes
        ):
            raise CommitError("a field has the wrong type", own)
        ordered = tuple(h for h in heads if type(h) is CID)  # all of them: checked above
        if list(ordered) != sorted(set(ordered)):
            raise CommitError("heads are not sorted by bytes without repeats", own)
        commit = cls(addr, ordered, root, count, prev, key, sig, block, own, roots, winners)
        if not verify_signature(key, commit.signing_bytes(), sig):
            raise CommitError("the signature does not verify with the commit's key", own)
        if address is not None and addr != address:
            raise CommitError(f"a commit of {addr}, not of {address}", own)
        if writers is not None and not _may_write(key, writers):
            raise CommitError("signed by a key that may not write to the database", own)
        return commit


def _may_write(key: bytes, writers: Iterable[bytes | str]) -> bool:
    for writer in writers:
        if writer == "*" or writer == key:
            return True
        if isinstance(writer, str) and writer.startswith("did:key:"):
            try:
                if key_from_did(writer) == key:
                    return True
            except ValueError:
                continue
    return False


def verify_read(
    commit: bytes,
    key: bytes | str,
    value: IPLDKind,
    proof: bytes,
    *,
    writers: Iterable[bytes | str],
    present: bool = True,
    address: str | None = None,
) -> Commit:
    """Check a read answered by anyone: ``key`` has ``value`` (or, ``present=False``, is absent).

    Needs nothing but the answer and the writers' public keys: the commit's signature by a writer,
    the proof against the commit's root, and the value against what the tree holds.

    Args:
        commit: the commit block the answer is given against.
        key: the key in the tree (a str is taken as UTF-8: keyvalue keys, document keys).
        value: the value answered (ignored when ``present`` is False).
        proof: the proof of ``key`` against the commit's root.
        writers: the database's write list (public keys or ``did:key``; ``"*"`` for anyone).
        present: whether the answer says the key is present.
        address: the database the answer must be about, if given.

    Returns:
        The checked commit (its ``heads`` and ``count`` say how recent the answer is).

    Raises:
        CommitError: the commit is malformed, forged, or not by a writer.
        ProofError: the proof does not verify, or shows another value or presence than answered.
    """
    checked = Commit.from_block(commit, writers=writers, address=address)
    tree_key = key.encode() if isinstance(key, str) else key
    held = verify_proof(checked.root, tree_key, proof)
    if not present:
        if held is not None:
            raise ProofError("the proof shows the key present, the answer says absent")
    elif held is None:
        raise ProofError("the proof shows the key absent, the answer gives a value")
    elif not value_matches(value, held):
        raise ProofError("the value answered is not the one the tree holds")
    return checked


@dataclass(frozen=True, slots=True)
class ReadProof:
    """A read answered with its proof: what ``db.prove(key)`` returns, and what a client checks."""

    key: bytes
    """The key in the state tree (see :mod:`orbit.state.views` for each store type's keys)."""
    present: bool
    value: IPLDKind
    """The value read (None when absent)."""
    proof: bytes
    commit: bytes
    """The signed commit block the proof is against."""

    def verify(self, writers: Iterable[bytes | str], *, address: str | None = None) -> Commit:
        """Check this answer with :func:`verify_read` and the database's write list.

        Raises:
            CommitError: the commit is malformed, forged, or not by a writer.
            ProofError: the proof does not verify, or shows another answer.
        """
        return verify_read(
            self.commit,
            self.key,
            self.value,
            self.proof,
            writers=writers,
            present=self.present,
            address=address,
        )


@dataclass(frozen=True, slots=True)
class RangeProof:
    """Every item of a key range, with the proof that it is all of them: what ``db.prove_range`` returns."""

    lo: bytes | None
    """The range's first key (in the tree), None for no bound."""
    hi: bytes | None
    """The key after the range, None for no bound."""
    items: tuple[tuple[bytes, IPLDKind], ...]
    """``(tree key, value)`` in key order."""
    proof: bytes
    commit: bytes

    def verify(self, writers: Iterable[bytes | str], *, address: str | None = None) -> Commit:
        """Check that :attr:`items` are exactly the range's items at a commit signed by a writer.

        Raises:
            CommitError: the commit is malformed, forged, or not by a writer.
            ProofError: the proof does not verify, or the items are not the ones the tree holds.
        """
        checked = Commit.from_block(self.commit, writers=writers, address=address)
        held = verify_range(checked.root, self.lo, self.hi, self.proof)
        if [k for k, _ in held] != [k for k, _ in self.items]:
            raise ProofError("the keys answered are not the range's keys in the tree")
        for (key, value), (_, digest) in zip(self.items, held, strict=True):
            if not value_matches(value, digest):
                raise ProofError(f"the value answered for {key!r:.80} is not the one the tree holds")
        return checked


@dataclass(frozen=True, slots=True)
class FindProof:
    """The documents whose indexed ``field`` is ``value``, proven complete: what ``db.prove_find`` returns.

    It holds a range proof over the field's index tree (every document key with that value, no other)
    and, for each document, its proof in the state tree.
    """

    field: str
    value: IPLDKind
    documents: tuple[tuple[str, IPLDKind], ...]
    """``(document key, document)`` in key order."""
    index_proof: bytes
    proofs: tuple[bytes, ...]
    """Each document's proof against the commit's root, in the same order."""
    commit: bytes

    def verify(self, writers: Iterable[bytes | str], *, address: str | None = None) -> Commit:
        """Check that :attr:`documents` are exactly those with ``field == value`` at a writer's commit.

        Raises:
            CommitError: the commit is malformed, forged, or not by a writer.
            ProofError: a proof does not verify, a document is missing or extra, or is not the one
                the tree holds, or does not have the value.
        """
        checked = Commit.from_block(self.commit, writers=writers, address=address)
        roots = dict(checked.indexes)
        if self.field not in roots:
            raise ProofError(f"the commit has no index on {self.field!r}")
        try:
            prefix = encode(self.value)
        except CodecError as e:
            raise ProofError(f"the value asked for is not IPLD: {e}") from e
        held = verify_range(roots[self.field], prefix, successor(prefix), self.index_proof)
        keys = [key[len(prefix) :] for key, _ in held]
        if keys != [key.encode() for key, _ in self.documents] or len(self.proofs) != len(keys):
            raise ProofError("the documents answered are not those the index holds for the value")
        for (key, doc), proof in zip(self.documents, self.proofs, strict=True):
            if type(doc) is not dict or self.field not in doc or encode(doc[self.field]) != prefix:
                raise ProofError(f"document {key!r:.80} does not have the value asked for")
            digest = verify_proof(checked.root, key.encode(), proof)
            if digest is None or not value_matches(doc, digest):
                raise ProofError(f"document {key!r:.80} is not the one the tree holds")
        return checked
