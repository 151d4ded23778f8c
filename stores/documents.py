"""Documents: IPLD maps keyed by one of their fields, with caller-declared field indexes.

Operations are ``{"op": "PUT", "key": k, "value": doc}``, ``{"op": "DEL", "key": k}`` and
``{"op": "PUTALL", "docs": [doc, …]}`` (many documents in one entry). Per key, the operation of the
entry last in the log's total order wins (:func:`stores.base.wins`); each document of a ``PUTALL``
competes with its entry's sort key, and within one ``PUTALL`` the last document with a key wins.
Deletions are kept as tombstones.

A field index maps each value of the field (compared as IPLD values, so ``1``, ``1.0`` and ``True``
differ) to the keys of the documents holding it, so :meth:`Documents.find` looks up rather than scans.

>>> from ipfs_log import Identity, Log, MemoryBlockStore
>>> log = Log(Identity.from_seed(b"d" * 32), MemoryBlockStore(), log_id="docs")
>>> docs = Documents(log, indexes=["city"])
>>> _ = docs.put({"_id": "ada", "city": "London"})
>>> _ = docs.put_many([{"_id": "kurt", "city": "Vienna"}, {"_id": "alan", "city": "London"}])
>>> [d["_id"] for d in docs.find(city="London")]
['ada', 'alan']
>>> _ = docs.delete("ada")
>>> [d["_id"] for d in docs.query(lambda d: d["city"] != "Vienna")]
['alan']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeAlias, Unpack

from ipfs_log import CID, Entry, Log
from ipfs_log.codec import IPLDKind, decode, encode
from ipfs_log.errors import CodecError
from stores.base import Batch, Sharing, SortKey, Store, sort_key_from_ipld, sort_key_to_ipld, wins
from stores.errors import (
    DocumentNotFoundError,
    InvalidCheckpointError,
    InvalidOperationError,
    UnindexedFieldError,
)

__all__ = ["Document", "Documents", "DocumentsBatch", "DocumentsOptions"]

Document: TypeAlias = dict[str, IPLDKind]
"""A document: an IPLD map holding its key under the store's ``index_by`` field."""


@dataclass(frozen=True, slots=True)
class DocumentsOptions:
    """How a documents store keys and indexes its documents."""

    index_by: str = "_id"
    """The field holding each document's key (a str)."""
    indexes: tuple[str, ...] = ()
    """Fields with an index, for :meth:`Documents.find`."""


class Documents(Store):
    """A documents store over a log.

    Documents returned by reads are the index's own objects: treat them as read-only.

    Args:
        log: the log the store follows.
        checkpoint: restore the index from :meth:`checkpoint` instead of replaying the log.
        index_by: the field holding each document's key (default ``"_id"``).
        indexes: the fields to index for :meth:`find`; with a checkpoint, the checkpoint's own
            declarations are used unless ``indexes`` is given.

    Raises:
        InvalidOperationError: ``index_by`` or an index field is not a str.
        InvalidCheckpointError: the checkpoint cannot be restored over this log, or was taken with
            another ``index_by``.
    """

    TYPE: ClassVar[str] = "documents"

    def __init__(
        self,
        log: Log,
        *,
        checkpoint: IPLDKind | None = None,
        catch_up: Sequence[Entry] = (),
        index_by: str = "_id",
        indexes: Iterable[str] | None = None,
        **shared: Unpack[Sharing],
    ) -> None:
        fields = None if indexes is None else tuple(dict.fromkeys(indexes))
        for name in (index_by, *(fields or ())):
            if type(name) is not str:
                raise InvalidOperationError(f"field names are str, not {name!r}", self.TYPE)
        self._index_by = index_by
        self._declared = fields
        self._docs: dict[str, Document] = {}
        self._winners: dict[str, SortKey] = {}  # every key ever written, tombstones included
        self._indexes: dict[str, dict[bytes, dict[str, None]]] = {f: {} for f in fields or ()}
        super().__init__(log, checkpoint=checkpoint, catch_up=catch_up, **shared)

    @property
    def options(self) -> DocumentsOptions:
        """The store's key field and indexed fields."""
        return DocumentsOptions(self._index_by, tuple(self._indexes))

    # ------------------------------------------------------------------ reading

    def get(self, key: str, default: Document | None = None) -> Document | None:
        """Return the document with key ``key``, or ``default`` if there is none."""
        return self._docs.get(key, default)

    def __getitem__(self, key: str) -> Document:
        """Return the document with key ``key``.

        Raises:
            DocumentNotFoundError: there is no such document.
        """
        try:
            return self._docs[key]
        except KeyError:
            raise DocumentNotFoundError(key) from None

    def __contains__(self, key: object) -> bool:
        return key in self._docs

    def __len__(self) -> int:
        return len(self._docs)

    def __iter__(self) -> Iterator[str]:
        """Iterate over the keys (in an order that may differ between replicas)."""
        return iter(self._docs)

    def keys(self) -> Iterator[str]:
        """Iterate over the keys."""
        return iter(self._docs)

    def items(self) -> Iterator[tuple[str, Document]]:
        """Iterate over ``(key, document)`` pairs."""
        return iter(self._docs.items())

    def all(self) -> dict[str, Document]:
        """Return every document, by key, as a new dict."""
        return dict(self._docs)

    def winner(self, key: str) -> SortKey | None:
        """Return the sort key of the operation that decides ``key`` (a tombstone's too), or None."""
        return self._winners.get(key)

    def winners(self) -> Iterator[tuple[str, SortKey]]:
        """Iterate over every key ever written (deleted ones too) with its deciding operation's sort key."""
        return iter(self._winners.items())

    def query(self, predicate: Callable[[Document], bool]) -> list[Document]:
        """Return the documents for which ``predicate`` is true, sorted by key; a scan of every document.

        Exceptions raised by ``predicate`` propagate.
        """
        found = [(k, d) for k, d in self._docs.items() if predicate(d)]
        found.sort(key=_first)
        return [d for _, d in found]

    def find(self, **fields: IPLDKind) -> list[Document]:
        """Return the documents whose fields equal the given values, sorted by key, using the indexes.

        At least one of the fields must be indexed (or be the ``index_by`` field); the candidates it
        gives are then checked against the other fields. Values compare as IPLD values.

        Raises:
            InvalidOperationError: no field was given, or a value is not an IPLD value.
            UnindexedFieldError: none of the fields has an index.
        """
        if not fields:
            raise InvalidOperationError("find() needs at least one field=value", self.TYPE)
        wanted: dict[str, bytes] = {}
        for name, value in fields.items():
            try:
                wanted[name] = encode(value)
            except CodecError as e:
                raise InvalidOperationError(f"find({name}=...) is not an IPLD value ({e})", self.TYPE) from e
        candidates: Iterable[str]
        if self._index_by in fields:
            key = fields[self._index_by]
            candidates = [key] if isinstance(key, str) and key in self._docs else []
        else:
            buckets: list[dict[str, None]] = [
                self._indexes[name].get(value, {}) for name, value in wanted.items() if name in self._indexes
            ]
            if not buckets:
                raise UnindexedFieldError(next(iter(fields)))
            smallest: dict[str, None] = min(buckets, key=len)
            candidates = smallest
        docs = self._docs
        found = []
        for k in candidates:
            doc = docs[k]
            if all(name in doc and _ipld_equal(doc[name], value) for name, value in wanted.items()):
                found.append((k, doc))
        found.sort(key=_first)
        return [d for _, d in found]

    def distinct(self, field: str) -> list[IPLDKind]:
        """Return the values an indexed field holds among the documents, each once, from its index.

        Values are in the order of their DAG-CBOR bytes, the same on every replica. A value that only
        deleted or replaced documents held is gone.

        Raises:
            UnindexedFieldError: ``field`` has no index.
        """
        index = self._indexes.get(field)
        if index is None:
            raise UnindexedFieldError(field)
        return [decode(value) for value in sorted(index)]

    # ------------------------------------------------------------------ writing

    def put(self, doc: Document) -> CID:
        """Store ``doc`` under the key in its ``index_by`` field, replacing any document with that key.

        Returns:
            The CID of the entry written.

        Raises:
            InvalidOperationError: ``doc`` is not a map, lacks a str ``index_by`` field, or is not an
                IPLD value.
            StoreClosedError: the store was closed.
        """
        return self._write((self._put_op(doc),))[0].cid

    def put_many(self, docs: Iterable[Document]) -> CID | None:
        """Store many documents with one entry (a ``PUTALL``); the last of two with one key wins.

        Returns:
            The CID of the entry written, or None if ``docs`` is empty (nothing is written).

        Raises:
            InvalidOperationError: a document is not a map, lacks a str ``index_by`` field, or is
                not an IPLD value; nothing is written.
            StoreClosedError: the store was closed.
        """
        op = self._put_all_op(docs)
        return None if op is None else self._write((op,))[0].cid

    def delete(self, key: str) -> CID:
        """Delete the document with key ``key``.

        Returns:
            The CID of the entry written.

        Raises:
            InvalidOperationError: ``key`` is not a str.
            DocumentNotFoundError: there is no such document.
            StoreClosedError: the store was closed.
        """
        self._check_key(key)
        if key not in self._docs:
            raise DocumentNotFoundError(key)
        return self._write(({"op": "DEL", "key": key},))[0].cid

    def batch(self) -> DocumentsBatch:
        """Return a :class:`DocumentsBatch` writing to this store."""
        return DocumentsBatch(self)

    def create_index(self, field: str) -> None:
        """Index ``field`` from now on (building the index from the current documents: O(n)).

        Raises:
            InvalidOperationError: ``field`` is not a str.
        """
        if type(field) is not str:
            raise InvalidOperationError(f"field names are str, not {field!r}", self.TYPE)
        if field in self._indexes:
            return
        index: dict[bytes, dict[str, None]] = {}
        for key, doc in self._docs.items():
            if field in doc:
                index.setdefault(encode(doc[field]), {})[key] = None
        self._indexes[field] = index

    # ------------------------------------------------------------------ validation

    def _check_key(self, key: object) -> None:
        if type(key) is not str:
            raise InvalidOperationError(f"keys are str, not {type(key).__name__}: {key!r}", self.TYPE)

    def _doc_key(self, doc: object) -> str:
        if type(doc) is not dict:
            raise InvalidOperationError(f"a document is a dict, not {type(doc).__name__}", self.TYPE)
        if self._index_by not in doc:
            raise InvalidOperationError(f"document has no {self._index_by!r} field: {doc!r}", self.TYPE)
        key = doc[self._index_by]
        if type(key) is not str:
            raise InvalidOperationError(
                f"document field {self._index_by!r} must be a str, not {type(key).__name__}: {key!r}",
                self.TYPE,
            )
        return key

    def _put_op(self, doc: Document) -> IPLDKind:
        key = self._doc_key(doc)
        return self._ipld({"op": "PUT", "key": key, "value": doc}, f"document {key!r}")

    def _put_all_op(self, docs: Iterable[Document]) -> IPLDKind | None:
        items: list[IPLDKind] = list(docs)
        if not items:
            return None
        for doc in items:
            self._doc_key(doc)
        return self._ipld({"op": "PUTALL", "docs": items}, f"one of {len(items)} documents")

    # ------------------------------------------------------------------ index

    def _apply(self, entry: Entry) -> bool:
        payload = entry.payload
        if type(payload) is not dict:
            return False
        op = payload.get("op")
        index_by = self._index_by
        if op == "PUT":
            key, doc = payload.get("key"), payload.get("value")
            if type(key) is not str or type(doc) is not dict or doc.get(index_by) != key:
                return False
            self._set(key, doc, entry.sort_key)
            return True
        if op == "DEL":
            key = payload.get("key")
            if type(key) is not str:
                return False
            self._set(key, None, entry.sort_key)
            return True
        if op == "PUTALL":
            docs = payload.get("docs")
            if type(docs) is not list:
                return False
            latest: dict[str, Document] = {}
            for doc in docs:
                if type(doc) is not dict:
                    return False
                key = doc.get(index_by)
                if type(key) is not str:
                    return False
                latest[key] = doc
            sort_key = entry.sort_key
            for key, doc in latest.items():
                self._set(key, doc, sort_key)
            return True
        return False

    def _set(self, key: str, doc: Document | None, sort_key: SortKey) -> None:
        if not wins(sort_key, self._winners.get(key)):
            return
        self._winners[key] = sort_key
        docs, indexes = self._docs, self._indexes
        old = docs.pop(key, None) if doc is None else docs.get(key)
        if indexes and old is not None:
            for field, index in indexes.items():
                if field in old:
                    value = encode(old[field])
                    bucket = index[value]
                    del bucket[key]
                    if not bucket:
                        del index[value]
        if doc is None:
            return
        docs[key] = doc
        for field, index in indexes.items():
            if field in doc:
                value = encode(doc[field])
                existing = index.get(value)
                if existing is None:
                    index[value] = {key: None}
                else:
                    existing[key] = None

    def _dump(self) -> IPLDKind:
        # {index_by, indexes, docs: {key: [time, writer, cid, doc] or [time, writer, cid] (tombstone)}}
        docs = self._docs
        records: dict[str, IPLDKind] = {}
        for key, sort_key in self._winners.items():
            record = sort_key_to_ipld(sort_key)
            if key in docs:
                record.append(docs[key])
            records[key] = record
        return {"index_by": self._index_by, "indexes": list(self._indexes), "docs": records}

    def _load(self, state: IPLDKind) -> None:
        if type(state) is not dict or state.keys() != {"index_by", "indexes", "docs"}:
            raise InvalidCheckpointError("documents state is {index_by, indexes, docs}")
        if state["index_by"] != self._index_by:
            raise InvalidCheckpointError(
                f"checkpoint indexes documents by {state['index_by']!r}, not {self._index_by!r}"
            )
        fields, records = state["indexes"], state["docs"]
        if type(fields) is not list or any(type(f) is not str for f in fields):
            raise InvalidCheckpointError("documents state: indexes is a list of str")
        if type(records) is not dict:
            raise InvalidCheckpointError("documents state: docs is a map")
        if self._declared is None:
            self._indexes = {f: {} for f in fields if isinstance(f, str)}
        for key, record in records.items():
            if type(record) is not list or len(record) not in (3, 4):
                raise InvalidCheckpointError(f"bad record for document {key!r}")
            sort_key = sort_key_from_ipld(record[:3])
            if len(record) == 4:
                doc = record[3]
                if type(doc) is not dict or doc.get(self._index_by) != key:
                    raise InvalidCheckpointError(f"bad document under key {key!r}")
                self._set(key, doc, sort_key)
            else:
                self._winners[key] = sort_key


def _first(pair: tuple[str, Document]) -> str:
    return pair[0]


def _ipld_equal(a: IPLDKind, b: bytes) -> bool:
    return encode(a) == b


class DocumentsBatch(Batch):
    """Puts and deletes of documents collected for one fast append (see :class:`stores.base.Batch`)."""

    _store: Documents

    def __init__(self, store: Documents) -> None:
        super().__init__(store)
        self._live: dict[str, bool] = {}  # keys this batch puts (True) or deletes (False)

    def put(self, doc: Document) -> None:
        """Add a put of ``doc``.

        Raises:
            InvalidOperationError: ``doc`` is not a map with a str key field, or not an IPLD value.
        """
        self._payloads.append(self._store._put_op(doc))
        self._live[self._store._doc_key(doc)] = True

    def put_many(self, docs: Iterable[Document]) -> None:
        """Add one ``PUTALL`` of ``docs`` (nothing if ``docs`` is empty).

        Raises:
            InvalidOperationError: a document is not a map with a str key field, or not an IPLD value.
        """
        items = list(docs)
        op = self._store._put_all_op(items)
        if op is not None:
            self._payloads.append(op)
            for doc in items:
                self._live[self._store._doc_key(doc)] = True

    def delete(self, key: str) -> None:
        """Add a deletion of the document ``key``.

        Raises:
            InvalidOperationError: ``key`` is not a str.
            DocumentNotFoundError: neither the store nor this batch holds such a document.
        """
        store = self._store
        store._check_key(key)
        if not self._live.get(key, key in store):
            raise DocumentNotFoundError(key)
        self._payloads.append({"op": "DEL", "key": key})
        self._live[key] = False
