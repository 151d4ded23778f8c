"""Each store type's state as tree items, and a store's tree kept in step with it.

What a store's tree maps (keys are bytes, values :func:`~orbit.state.values.value_bytes` of the value):

- keyvalue: each live key (UTF-8) to its value; deleted keys are absent;
- documents: each document's key (the ``index_by`` field, UTF-8) to the document;
- counter: each writer's 32-byte public key to its net total (a decimal string beyond 64 bits);
- eventlog: each event's position to its value, where a position is ``clock time (8 bytes, big-endian)
  ‖ writer key (32) ‖ entry CID`` — the log's total order as bytes, so positions sort as the log does and
  an older entry joined later takes its place without shifting the others (an index would shift);
- table: each visible row, keyed by :func:`row_key` (the table's name, then the primary key's values,
  each as order-preserving bytes: a table's rows share a prefix and sort as SQLite sorts the key, so a
  primary-key range is one key range of the tree), to the row (a column → value map).

Keyvalue and documents stores also keep a **winners tree**: each key ever written (deleted ones too),
UTF-8, to the 32-byte digest of the entry whose operation decides it (its CID without the 4-byte
prefix every entry CID shares). A commit names its root, so a replica opened from the commit can fetch
exactly the deciding entries and merge later ones by last-writer-wins (:mod:`orbit.state.bootstrap`).

A :class:`StateIndex` builds its tree from the store's index the first time it is asked for (one pass,
:meth:`StateTree.build`), then applies each batch of entries the store applies, touching only the keys
those entries name. Its owner calls it under the store's lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, encode
from ipfs_log.entry import Entry
from ipfs_log.errors import BlockNotFoundError
from ipfs_log.gc import gc_paused
from orbit.errors import StateError, TreeNodeError
from orbit.state.proofs import prove, prove_range
from orbit.state.tree import MemoryNodes, NodeStore, StateTree, successor, tree_blocks
from orbit.state.values import DIGEST_BYTES, value_bytes
from stores.base import Store
from stores.counter import Counter
from stores.documents import Documents
from stores.eventlog import EventLog
from stores.keyvalue import KeyValue
from stores.table import Table

__all__ = [
    "StateIndex",
    "event_position",
    "index_key",
    "row_key",
    "row_key_values",
    "state_items",
    "table_range",
]

_MIN: Final = -(2**64)
_MAX: Final = 2**64 - 1


def event_position(entry: Entry) -> bytes:
    """Return an eventlog entry's key in the tree: its sort key as bytes (see the module's text)."""
    return entry.time.to_bytes(8, "big") + entry.key + bytes(entry.cid)


_INT_BIAS: Final = 2**63
_INT: Final = b"\x02"
_TEXT: Final = b"\x03"
_BLOB: Final = b"\x04"
_END: Final = b"\x00\x00"


def _ordered(value: IPLDKind) -> bytes:
    """One key value as bytes that sort as SQLite sorts it in its column (``INTEGER``, ``TEXT``, ``BLOB``).

    An integer is its 64-bit value plus 2**63, big-endian; text (UTF-8, SQLite's ``BINARY`` collation)
    and blobs are their bytes with each NUL doubled as ``00 FF``, ended by ``00 00`` (below any
    continuation, so a shorter value sorts first whatever follows it); a type byte leads each.
    """
    if type(value) is int and -_INT_BIAS <= value < _INT_BIAS:
        return _INT + (value + _INT_BIAS).to_bytes(8, "big")
    if type(value) is str:
        return _TEXT + value.encode().replace(b"\x00", b"\x00\xff") + _END
    if type(value) is bytes:
        return _BLOB + value.replace(b"\x00", b"\x00\xff") + _END
    raise StateError(f"a primary-key value is a 64-bit int, text or bytes, not {value!r:.80}")


def row_key(table: str, key: Sequence[IPLDKind]) -> bytes:
    """Return a table row's key in the tree: the table's name, then each key value, order-preserving.

    >>> row_key("t", [2]) < row_key("t", [10]) < row_key("t", [2**40])
    True
    >>> row_key("t", ["b", 1]) < row_key("t", ["ba", 0])
    True
    """
    return _ordered(table) + b"".join(_ordered(v) for v in key)


def row_key_values(key: bytes) -> tuple[str, tuple[IPLDKind, ...]]:
    """Read a :func:`row_key` back: ``(table, primary key values)``.

    Raises:
        StateError: the bytes are not a row key.
    """
    values: list[IPLDKind] = []
    at = 0
    while at < len(key):
        tag, at = key[at : at + 1], at + 1
        if tag == _INT and at + 8 <= len(key):
            values.append(int.from_bytes(key[at : at + 8], "big") - _INT_BIAS)
            at += 8
            continue
        end, scan = -1, at
        while tag in (_TEXT, _BLOB):  # the first NUL not doubled as 00 FF starts the 00 00 ending
            nul = key.find(b"\x00", scan)
            if nul < 0 or nul + 1 >= len(key) or key[nul + 1] not in (0x00, 0xFF):
                break
            if key[nul + 1] == 0x00:
                end = nul
                break
            scan = nul + 2
        if end < 0:
            raise StateError(f"not a row key: {key[:40]!r}")
        raw = key[at:end].replace(b"\x00\xff", b"\x00")
        at = end + 2
        try:
            values.append(raw.decode() if tag == _TEXT else raw)
        except UnicodeDecodeError as e:
            raise StateError(f"not a row key: {key[:40]!r}") from e
    if not values or type(values[0]) is not str:
        raise StateError(f"not a row key: {key[:40]!r}")
    return values[0], tuple(values[1:])


def table_range(
    table: str, lo: Sequence[IPLDKind] | None, hi: Sequence[IPLDKind] | None
) -> tuple[bytes, bytes]:
    """The tree-key bounds ``[lo, hi)`` of a table's rows with ``lo <= key < hi`` (None: unbounded)."""
    prefix = _ordered(table)
    return (
        prefix if lo is None else row_key(table, lo),
        prefix + b"\xff" if hi is None else row_key(table, hi),
    )


_Keep = Callable[[IPLDKind], bytes]


def _keeper(blocks: NodeStore | None) -> _Keep:
    """Return :func:`value_bytes`, also putting each digested value's block in ``blocks``.

    The block goes under its CID, whose digest the tree holds, so a reader holding only a commit can
    fetch the value.
    """
    if blocks is None:
        return value_bytes

    def keep(value: IPLDKind) -> bytes:
        block = encode(value)
        if len(block) < DIGEST_BYTES:
            return block
        cid = CID.for_block(block)
        blocks.put(cid, block)
        return cid[4:]

    return keep


def _total(total: int, keep: _Keep) -> bytes:
    return keep(total if _MIN <= total <= _MAX else str(total))


def _event_value(entry: Entry, keep: _Keep = value_bytes) -> bytes | None:
    payload = entry.payload
    if type(payload) is dict and payload.get("op") == "ADD" and "value" in payload:
        return keep(payload["value"])
    return None


def state_items(store: Store, blocks: NodeStore | None = None) -> Iterator[tuple[bytes, bytes]]:
    """Yield the store's state as tree items, in key order.

    With ``blocks``, the block of each value held as a digest is put there.

    Raises:
        StateError: the store type has no state tree.
    """
    keep = _keeper(blocks)
    if isinstance(store, KeyValue | Documents):
        pairs: list[tuple[bytes, IPLDKind]] = [(k.encode(), v) for k, v in store.items()]
        pairs.sort(key=lambda pair: pair[0])
        for key, value in pairs:
            yield key, keep(value)
    elif isinstance(store, Counter):
        for writer, total in sorted(store.totals.items()):
            yield writer, _total(total, keep)
    elif isinstance(store, EventLog):
        for entry in store.log:  # the log's order is the positions' order
            value = _event_value(entry, keep)
            if value is not None:
                yield event_position(entry), value
    elif isinstance(store, Table):
        rows = [(row_key(t.name, k), row) for t in store.schema.tables for k, row in store.rows(t.name)]
        rows.sort(key=lambda pair: pair[0])
        for key, row in rows:
            yield key, keep(row)
    else:
        raise StateError(f"no state tree for {store.TYPE} stores")


def _changes(store: Store, entries: Sequence[Entry], keep: _Keep) -> Iterator[tuple[bytes, bytes | None]]:
    """The tree items the entries may have changed, with their value now (None: absent)."""
    if isinstance(store, KeyValue):
        for key in dict.fromkeys(_payload_keys(entries)):
            value = store.get(key)
            yield key.encode(), None if value is None and key not in store else keep(value)
    elif isinstance(store, Documents):
        index_by = store.options.index_by
        for key in dict.fromkeys(_payload_keys(entries, index_by)):
            doc = store.get(key)
            yield key.encode(), None if doc is None else keep(doc)
    elif isinstance(store, Counter):
        for writer in dict.fromkeys(e.key for e in entries):
            yield writer, _total(store.totals.get(writer, 0), keep)
    elif isinstance(store, EventLog):
        for entry in entries:
            value = _event_value(entry, keep)
            if value is not None:
                yield event_position(entry), value
    elif isinstance(store, Table):
        for name, pk in store.touched(entries):
            row = store.get(name, pk)
            yield row_key(name, pk), None if row is None else keep(row)


def _payload_keys(entries: Iterable[Entry], index_by: str | None = None) -> Iterator[str]:
    for entry in entries:
        payload = entry.payload
        if type(payload) is not dict:
            continue
        key = payload.get("key")
        if type(key) is str:
            yield key
        docs = payload.get("docs") if index_by is not None else None
        if type(docs) is list:
            for doc in docs:
                if type(doc) is dict and type(doc.get(index_by)) is str:  # type: ignore[arg-type]
                    yield doc[index_by]  # type: ignore[index,misc]


def index_key(value: IPLDKind, doc_key: str) -> bytes:
    """Return a documents index tree's key: the field value's DAG-CBOR, then the document key (UTF-8).

    The DAG-CBOR of a value ends where the value does, so the keys of one value are exactly those that
    start with its encoding: a ``find`` is a prefix range.
    """
    return encode(value) + doc_key.encode()


class _IndexTrees:
    """One tree per indexed field of a documents store: ``index_key(value, key)`` → ``b""``."""

    def __init__(self, store: Documents, nodes: NodeStore | None) -> None:
        self.fields = store.options.indexes
        self._held: dict[str, dict[str, bytes]] = {}  # document key -> field -> encoded value
        rows: dict[str, list[tuple[bytes, bytes]]] = {f: [] for f in self.fields}
        for key, doc in store.items():
            encoded = self._encoded(doc)
            if encoded:
                self._held[key] = encoded
                for field, value in encoded.items():
                    rows[field].append((value + key.encode(), b""))
        self.trees = {f: StateTree.build(sorted(rows[f]), nodes) for f in self.fields}
        self._pending: dict[str, dict[bytes, bytes | None]] = {f: {} for f in self.fields}

    def _encoded(self, doc: IPLDKind) -> dict[str, bytes]:
        if type(doc) is not dict:
            return {}
        return {f: encode(doc[f]) for f in self.fields if f in doc}

    def changed(self, store: Documents, keys: Iterable[str]) -> None:
        for key in keys:
            old = self._held.pop(key, {})
            new = self._encoded(store.get(key))
            if new:
                self._held[key] = new
            for field in self.fields:
                before, after = old.get(field), new.get(field)
                if before != after:
                    pending = self._pending[field]
                    if before is not None:
                        pending[before + key.encode()] = None
                    if after is not None:
                        pending[after + key.encode()] = b""

    def tree(self, field: str) -> StateTree:
        tree = self.trees[field]
        pending = self._pending[field]
        if pending:
            self._pending[field] = {}
            with gc_paused():
                tree.update(pending)
        return tree


class StateIndex:
    """A store's state tree, built on first use and then kept in step with the store.

    Args:
        store: the store whose state the tree holds.
        nodes: where the tree's nodes go (default: memory).
        start: the root of the store's current state, if known (a commit this replica signed at the
            log's current heads): the tree is then opened from it, its nodes read from ``nodes`` and
            checked as they are reached, instead of being rebuilt from the index.
    """

    def __init__(self, store: Store, nodes: NodeStore | None = None, start: CID | None = None) -> None:
        self._store = store
        self._nodes: NodeStore = MemoryNodes() if nodes is None else nodes
        self._keep = _keeper(self._nodes)  # digested values' blocks go beside the nodes
        self._tree: StateTree | None = None
        self._pending: dict[bytes, bytes | None] = {}  # changes not yet in the tree
        self._indexes: _IndexTrees | None = None  # a documents store's index trees, with the tree
        self._winners: StateTree | None = None  # keyvalue and documents: built on first use
        self._winners_pending: dict[str, None] = {}
        if start is not None:
            tree = StateTree(self._nodes, start)
            try:
                tree.get(b"")  # reads and checks the root node now: a missing or bad one means rebuild
            except (TreeNodeError, BlockNotFoundError):
                pass
            else:
                self._tree = tree
        self.updates = 0
        """How many items were written to the tree since it was built."""

    @property
    def built(self) -> bool:
        """Whether the tree exists yet (it is built on first use)."""
        return self._tree is not None

    @property
    def tree(self) -> StateTree:
        """The tree, built from the store's index if it was not yet.

        Raises:
            StateError: the store type has no state tree.
        """
        if self._tree is None:
            self._tree = StateTree.build(state_items(self._store, self._nodes), self._nodes)
            self._pending.clear()
        elif self._pending:
            pending, self._pending = self._pending, {}
            with gc_paused():  # many small lists, no cycles: as the log does for its bulk work
                self._tree.update(pending)
        return self._tree

    def apply(self, entries: Sequence[Entry]) -> None:
        """Bring the tree up to date with entries the store just applied (nothing until it is built)."""
        if self._tree is None:
            return
        pending = self._pending
        for key, value in _changes(self._store, entries, self._keep):
            pending[key] = value  # applied to the tree in one walk when it is next read
            self.updates += 1
        store = self._store
        if self._indexes is not None and isinstance(store, Documents):
            self._indexes.changed(store, dict.fromkeys(_payload_keys(entries, store.options.index_by)))
        if self._winners is not None:
            index_by = store.options.index_by if isinstance(store, Documents) else None
            self._winners_pending.update(dict.fromkeys(_payload_keys(entries, index_by)))

    def winners_root(self) -> CID | None:
        """Return the root of the winners tree (see the module's text); None for other store types."""
        store = self._store
        if not isinstance(store, KeyValue | Documents):
            return None
        self.tree  # noqa: B018  (built first, so later entries reach the winners tree too)
        if self._winners is None:
            items = sorted((key.encode(), sort_key[2][4:]) for key, sort_key in store.winners())
            self._winners = StateTree.build(items, self._nodes)
            self._winners_pending.clear()
        elif self._winners_pending:
            pending, self._winners_pending = self._winners_pending, {}
            changes: dict[bytes, bytes | None] = {}
            for key in pending:
                sort_key = store.winner(key)
                changes[key.encode()] = None if sort_key is None else sort_key[2][4:]
            with gc_paused():
                self._winners.update(changes)
        return self._winners.root()

    def _index_trees(self) -> _IndexTrees | None:
        """The documents index trees, (re)built when the declared indexes changed."""
        store = self._store
        if not isinstance(store, Documents) or not store.options.indexes:
            return None
        self.tree  # noqa: B018  (built first, so later entries reach the index trees too)
        if self._indexes is None or self._indexes.fields != store.options.indexes:
            self._indexes = _IndexTrees(store, self._nodes)
        return self._indexes

    def index_roots(self) -> dict[str, CID]:
        """Return the root of each documents index tree by field (empty for other stores)."""
        indexes = self._index_trees()
        if indexes is None:
            return {}
        return {field: indexes.tree(field).root() for field in indexes.fields}

    def find(self, field: str, value: IPLDKind) -> tuple[bytes, bytes | None, list[str], bytes]:
        """Return ``(lo, hi, document keys, range proof)`` of the documents whose ``field`` is ``value``.

        Raises:
            StateError: the store is not a documents store with an index on ``field``, or ``value``
                is not IPLD.
        """
        indexes = self._index_trees()
        if indexes is None or field not in indexes.fields:
            raise StateError(f"no index on {field!r} here: declare it with indexes=[...]")
        try:
            lo = encode(value)
        except ValueError as e:
            raise StateError(f"not a value an index holds: {e}") from e
        hi = successor(lo)
        tree = indexes.tree(field)
        keys = [key[len(lo) :].decode() for key, _ in tree.items(lo, hi)]
        return lo, hi, keys, prove_range(tree, lo, hi)

    def blocks(self) -> Iterator[tuple[CID, bytes]]:
        """Yield the blocks of the state now: the trees' nodes and the values held as digests.

        Raises:
            StateError: the store type has no state tree.
        """
        yield from tree_blocks(self._nodes, self.root())
        for index_root in self.index_roots().values():
            yield from tree_blocks(self._nodes, index_root)
        winners = self.winners_root()
        if winners is not None:
            yield from tree_blocks(self._nodes, winners)

    def root(self) -> CID:
        """Return the root of the store's state now.

        Raises:
            StateError: the store type has no state tree.
        """
        return self.tree.root()

    def read(self, key: object) -> tuple[bytes, bool, IPLDKind]:
        """Return ``(tree key, present, value)`` for a store's own key.

        The key is a str for keyvalue and documents, a writer's public key (bytes) for a counter, an
        entry's CID for an eventlog.

        Raises:
            StateError: the key is not of the store type's kind, or the store has no state tree.
        """
        store = self._store
        if isinstance(store, KeyValue | Documents) and type(key) is str:
            present = key in store
            return key.encode(), present, store.get(key) if present else None
        if isinstance(store, Counter) and type(key) is bytes:
            totals = store.totals
            total = totals.get(key)
            return key, total is not None, total
        if isinstance(store, EventLog) and type(key) is CID:
            if key in store.log:
                entry = store.log.get(key)
                if _event_value(entry) is not None:
                    assert type(entry.payload) is dict
                    return event_position(entry), True, entry.payload["value"]
            raise StateError(f"no event {key} in the log: an absent event has no position to prove")
        if isinstance(store, Table) and type(key) is tuple and len(key) == 2 and type(key[0]) is str:
            table, pk = key
            pk = pk if isinstance(pk, tuple) else (pk,)
            try:
                row = store.get(table, pk)
            except ValueError as e:  # InvalidOperationError: no such table, or a malformed key
                raise StateError(f"not a row key of this table store: {e}") from e
            return row_key(table, pk), row is not None, row
        raise StateError(f"not a key of a {store.TYPE} store: {key!r:.80}")

    def range(
        self, lo: object, hi: object
    ) -> tuple[bytes | None, bytes | None, list[tuple[bytes, IPLDKind]], bytes]:
        """Return ``(lo, hi, items, proof)`` of the tree keys in ``[lo, hi)`` with the store's values.

        Bounds are str (UTF-8) for keyvalue and documents, bytes (tree keys) otherwise; None is unbounded.

        Raises:
            StateError: a bound is of the wrong kind, or the store type has no state tree.
        """
        store = self._store
        bounds: list[bytes | None] = []
        for bound in (lo, hi):
            if bound is None or type(bound) is bytes:
                bounds.append(bound)
            elif type(bound) is str and isinstance(store, KeyValue | Documents):
                bounds.append(bound.encode())
            else:
                raise StateError(f"not a range bound of a {store.TYPE} store: {bound!r:.80}")
        tree = self.tree
        proof = prove_range(tree, bounds[0], bounds[1])
        items: list[tuple[bytes, IPLDKind]] = []
        for key, _ in tree.items(bounds[0], bounds[1]):
            items.append((key, self._value_of(key)))
        return bounds[0], bounds[1], items, proof

    def _value_of(self, key: bytes) -> IPLDKind:
        """The store's value for a tree key the tree holds."""
        store = self._store
        if isinstance(store, KeyValue | Documents):
            return store.get(key.decode())
        if isinstance(store, Counter):
            return store.totals.get(key)
        if isinstance(store, EventLog):
            entry = store.log.get(CID(key[40:]))
            assert type(entry.payload) is dict
            return entry.payload["value"]
        if isinstance(store, Table):
            name, pk = row_key_values(key)
            return store.get(name, pk)
        raise StateError(f"no state tree for {store.TYPE} stores")

    def prove(self, key: bytes) -> bytes:
        """Return the proof of ``key`` against :meth:`root` (see :mod:`orbit.state.proofs`).

        Raises:
            StateError: the store type has no state tree.
        """
        return prove(self.tree, key)
