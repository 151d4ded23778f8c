"""Where a database opened from a commit keeps that commit and the state it started from.

A database opened from a snapshot starts its log at the commit's heads (:meth:`ipfs_log.Log.start_at`);
its history before them is not here. The record, one DAG-CBOR file per database
(``state/<manifest CID>.frontier``: ``{commit: block, checkpoint: the store's checkpoint at its
heads}``), is written before the log's first records and never changes, so a reopen knows where the
log starts, and an index checkpoint that is lost or damaged is rebuilt from the record and the entries
admitted after it (the history that would otherwise be replayed is not here).
"""

from __future__ import annotations

from pathlib import Path

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, decode, encode
from ipfs_log.errors import CodecError
from orbit.errors import BlockStoreError, StorageCorruptError
from orbit.files import write_atomically

__all__ = ["FrontierRecords"]


class FrontierRecords:
    """The frontier records of a directory's databases (see the module's text)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, manifest: CID) -> Path:
        """Return the record's file for the database with this manifest CID."""
        return self.directory / "state" / f"{manifest.encode()}.frontier"

    def load(self, manifest: CID) -> tuple[bytes, IPLDKind] | None:
        """Return ``(commit block, checkpoint)`` of the database's frontier, or None if it has none.

        Raises:
            StorageCorruptError: the record is unreadable or malformed.
        """
        path = self.path(manifest)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StorageCorruptError(f"frontier record unreadable: {e}", path) from e
        try:
            value = decode(raw)
        except CodecError as e:
            raise StorageCorruptError(f"frontier record does not decode: {e}", path) from e
        if (
            type(value) is not dict
            or value.keys() != {"commit", "checkpoint"}
            or type(value["commit"]) is not bytes
        ):
            raise StorageCorruptError("a frontier record is {commit, checkpoint}", path)
        return value["commit"], value["checkpoint"]

    def save(self, manifest: CID, commit: bytes, checkpoint: IPLDKind) -> None:
        """Write the record durably (replacing any).

        Raises:
            BlockStoreError: the file cannot be written.
        """
        path = self.path(manifest)
        try:
            path.parent.mkdir(exist_ok=True)
            write_atomically(path, encode({"commit": commit, "checkpoint": checkpoint}))
        except OSError as e:
            raise BlockStoreError(f"cannot write the frontier record: {e}", path) from e

    def remove(self, manifest: CID) -> None:
        """Delete the record, if any.

        Raises:
            BlockStoreError: it cannot be deleted.
        """
        try:
            self.path(manifest).unlink(missing_ok=True)
        except OSError as e:
            raise BlockStoreError(f"cannot delete the frontier record: {e}", self.path(manifest)) from e
