"""A documents database: JSON-like documents by key, with indexed fields."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind
from orbit.databases.base import locked
from orbit.databases.keyed import KeyedDatabase
from orbit.databases.registry import register
from stores.documents import Document, Documents, DocumentsBatch, DocumentsOptions

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
        return {"index_by": self.store.options.index_by}

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
