"""Where a log that does not hold its whole history starts: its frontier record and what lies under it.

A database opened from a snapshot starts its log at the commit's heads (:meth:`ipfs_log.Log.start_at`),
and a compacted one dropped the entries under a commit's heads: their history is not here. The
record, one DAG-CBOR value per log in the ``frontiers`` database (``{commit: block, checkpoint: the
store's checkpoint at its heads}``, and ``dropped: n`` for a compacted log), tells a reopen where the
log starts; an index checkpoint that is lost or damaged is rebuilt from the record and the entries
admitted after it (the history that would otherwise be replayed is not here). A snapshot's record is
written before the log's first records and never changes; a compaction writes its record in the one
transaction that drops the entries.

A compacted log also keeps, for each entry it dropped, its CID and clock time in the ``under``
database (``lognum | CID`` → time): what a later join needs to tell an entry under the frontier from
one concurrent with it, without the network (:class:`StoredUnder`, a complete
:class:`ipfs_log.frontier.Frontier`'s ``under``).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, decode, encode
from ipfs_log.errors import CodecError
from ipfs_log.frozen import Frozen, frozen_init
from orbit.errors import StorageCorruptError
from orbit.storage.env import Environment, guarded
from orbit.storage.layout import CID_LEN, U64, log_prefix

__all__ = ["FrontierRecord", "FrontierRecords", "StoredUnder"]


class FrontierRecord(Frozen):
    """Where a log starts: the commit, the store's checkpoint at its heads, and what a compaction dropped."""

    __match_args__ = ("commit", "checkpoint", "dropped")
    __slots__ = __match_args__
    commit: bytes
    """The commit's block."""
    checkpoint: IPLDKind
    """The store's checkpoint at the commit's heads."""
    dropped: int | None
    """How many entries compactions dropped (listed in ``under``); None: opened from a snapshot."""

    def __init__(self, commit: bytes, checkpoint: IPLDKind, dropped: int | None = None) -> None:
        frozen_init(self, commit, checkpoint, dropped)


class FrontierRecords:
    """The frontier records of an environment's logs (see the module's text).

    Every method runs under the environment's lock and raises :class:`~orbit.errors.BlockStoreError`
    when the storage fails.
    """

    def __init__(self, env: Environment) -> None:
        self.env = env

    @guarded("read a frontier record")
    def load(self, lognum: int) -> FrontierRecord | None:
        """Return the record of log number ``lognum``, or None if it has none.

        Raises:
            StorageCorruptError: the record is malformed.
        """
        raw = self.env.reader().get(log_prefix(lognum), db=self.env.db[b"frontiers"])
        if raw is None:
            return None
        try:
            value = decode(bytes(raw))
        except CodecError as e:
            raise StorageCorruptError(
                f"frontier record of log {lognum} does not decode: {e}", self.env.path
            ) from e
        if (
            type(value) is not dict
            or not {"commit", "checkpoint"} <= value.keys() <= {"commit", "checkpoint", "dropped"}
            or type(value["commit"]) is not bytes
            or type(value.get("dropped", 0)) is not int
        ):
            raise StorageCorruptError(
                f"a frontier record is {{commit, checkpoint, dropped?}} (log {lognum})", self.env.path
            )
        dropped = value.get("dropped")
        return FrontierRecord(value["commit"], value["checkpoint"], dropped if type(dropped) is int else None)

    @guarded("save a frontier record")
    def save(self, lognum: int, record: FrontierRecord) -> None:
        """Write the record in one commit (replacing any)."""
        self.env.write(lambda txn: self.put(txn, lognum, record))

    def put(self, txn: Any, lognum: int, record: FrontierRecord) -> None:
        """Write the record in ``txn``, a write transaction of a larger commit."""
        value: dict[str, IPLDKind] = {"commit": record.commit, "checkpoint": record.checkpoint}
        if record.dropped is not None:
            value["dropped"] = record.dropped
        txn.put(log_prefix(lognum), encode(value), db=self.env.db[b"frontiers"])

    @guarded("delete a frontier record")
    def remove(self, lognum: int) -> None:
        """Delete the record, if any (a snapshot's, whose log never got its first records)."""
        self.env.write(lambda txn: txn.delete(log_prefix(lognum), db=self.env.db[b"frontiers"]))

    def under(self, lognum: int) -> StoredUnder:
        """Return the entries compactions of log number ``lognum`` dropped, CID → clock time."""
        return StoredUnder(self.env, lognum)


class StoredUnder(MutableMapping[CID, int]):
    """The entries compactions of a log dropped, CID → clock time, read from the ``under`` database.

    A view: lookups read the store (one point read each), so a log that dropped a million entries
    keeps none of them in memory. Read-only: a compaction writes its rows in its own transaction.
    """

    def __init__(self, env: Environment, lognum: int) -> None:
        self.env = env
        self._prefix = log_prefix(lognum)

    @guarded("look up a dropped entry")
    def get(self, cid: CID, default: Any = None) -> Any:  # noqa: D102 (Mapping.get)
        raw = self.env.reader().get(self._prefix + cid, db=self.env.db[b"under"])
        return default if raw is None else U64.unpack(raw)[0]

    def __getitem__(self, cid: CID) -> int:
        time: int | None = self.get(cid) if isinstance(cid, CID) else None
        if time is None:
            raise KeyError(cid)
        return time

    def __contains__(self, cid: object) -> bool:
        return isinstance(cid, CID) and self.get(cid) is not None

    @guarded("list dropped entries")
    def __iter__(self) -> Iterator[CID]:
        prefix, cids = self._prefix, []
        cursor = self.env.reader().cursor(db=self.env.db[b"under"])
        if cursor.set_range(prefix):
            for key in cursor.iternext(keys=True, values=False):
                if key[:4] != prefix:
                    break
                cids.append(CID(key[4 : 4 + CID_LEN]))
        return iter(cids)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __setitem__(self, cid: CID, time: int) -> None:
        raise TypeError("the entries a compaction dropped are written by the compaction alone")

    def __delitem__(self, cid: CID) -> None:
        raise TypeError("the entries a compaction dropped are written by the compaction alone")
