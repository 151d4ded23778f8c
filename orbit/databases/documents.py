"""A documents database: JSON-like documents by key, with indexed fields."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind
from orbit.databases.base import locked
from orbit.databases.keyed import KeyedDatabase
from orbit.databases.registry import register
from stores.documents import Document, Documents, DocumentsBatch, DocumentsOptions

if TYPE_CHECKING:
    from orbit.state import FindProof

__all__ = ["DocumentsDatabase"]


@register
class DocumentsDatabase(KeyedDatabase[Documents, Document]):
    """A documents database: JSON-like documents by key, with indexed fields for queries."""

    STORE = Documents

    @property
    def options(self) -> DocumentsOptions:
        """The key field and indexed fields."""
        return self.store.options

    def _state_options(self) -> dict[str, object]:
        options = self.store.options
        return {"index_by": options.index_by, "indexes": options.indexes}

    @locked
    def prove_find(self, field: str, value: IPLDKind) -> FindProof:
        """Find the documents whose indexed ``field`` is ``value``, with a proof that they are all.

        The client checks the answer with :meth:`~orbit.state.FindProof.verify` and the write list.

        Raises:
            DatabaseClosedError: the database is closed.
            StateError: ``field`` has no index here, or ``value`` is not IPLD.
        """
        from orbit.state import FindProof

        state = self._state
        _, _, keys, index_proof = state.find(field, value)
        documents = tuple((key, self.store.get(key)) for key in keys)
        proofs = tuple(state.prove(key.encode()) for key in keys)
        commit = self._current_commit()
        return FindProof(field, value, documents, index_proof, proofs, commit.block)

    @locked
    def query(self, predicate: Callable[[Document], bool]) -> list[Document]:
        """Return the documents for which ``predicate`` is true (it runs under the lock)."""
        return self.store.query(predicate)

    @locked
    def find(self, /, **fields: IPLDKind) -> list[Document]:
        """Return the documents whose indexed ``fields`` have the given values."""
        return self.store.find(**fields)

    @locked
    def create_index(self, field: str) -> None:
        """Index ``field`` for :meth:`find`."""
        self.store.create_index(field)

    def put(self, doc: Document) -> CID:
        """Store a document under its key field; return the entry's CID once committed."""
        return self.store.put(doc)

    def put_many(self, docs: Iterable[Document]) -> CID | None:
        """Store many documents as one ``PUTALL`` entry; return its CID (None if ``docs`` is empty)."""
        return self.store.put_many(docs)

    def delete(self, key: str) -> CID:
        """Delete the document under ``key``; return the entry's CID once committed."""
        return self.store.delete(key)

    @locked
    def batch(self) -> DocumentsBatch:
        """Return a batch of document writes, appended together when it commits."""
        return self.store.batch()
