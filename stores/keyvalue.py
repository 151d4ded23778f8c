"""Keyvalue: a last-writer-wins map from string keys to IPLD values.

Operations are ``{"op": "PUT", "key": k, "value": v}`` and ``{"op": "DEL", "key": k}``. Per key, the
operation of the entry last in the log's total order wins (:func:`stores.base.wins`); a deletion is
kept as a tombstone with its sort key, so an older ``PUT`` joined later cannot bring the key back.
``get`` is one dict lookup.

>>> from ipfs_log import Identity, Log, MemoryBlockStore
>>> kv = KeyValue(Log(Identity.from_seed(b"k" * 32), MemoryBlockStore(), log_id="kv"))
>>> _ = kv.put("a", 1), kv.put("b", [2, 3]), kv.delete("a")
>>> kv.get("a"), kv["b"], "a" in kv, len(kv)
(None, [2, 3], False, 1)
>>> with kv.batch() as batch:
...     batch.put("c", {"x": 1})
...     batch.put("c", {"x": 2})
>>> kv.all()
{'b': [2, 3], 'c': {'x': 2}}
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from ipfs_log import CID, Entry
from ipfs_log.codec import IPLDKind
from stores.base import Batch, SortKey, Store, sort_key_to_ipld, wins
from stores.errors import InvalidCheckpointError, InvalidOperationError, KeyNotFoundError

__all__ = ["KeyValue", "KeyValueBatch"]


class KeyValue(Store):
    """A last-writer-wins key-value store over a log.

    Values returned by reads are the index's own objects: treat them as read-only.

    Args:
        log: the log the store follows.
        checkpoint: restore the index from :meth:`checkpoint` instead of replaying the log.

    Raises:
        InvalidCheckpointError: the checkpoint cannot be restored over this log.
    """

    TYPE: ClassVar[str] = "keyvalue"

    def _new_index(self) -> None:
        self._values: dict[str, IPLDKind] = {}
        self._winners: dict[str, SortKey] = {}  # every key ever written, tombstones included

    # ------------------------------------------------------------------ reading

    def get(self, key: str, default: IPLDKind = None) -> IPLDKind:
        """Return the value under ``key``, or ``default`` if there is none."""
        return self._values.get(key, default)

    def __getitem__(self, key: str) -> IPLDKind:
        """Return the value under ``key``.

        Raises:
            KeyNotFoundError: no value is stored under ``key``.
        """
        try:
            return self._values[key]
        except KeyError:
            raise KeyNotFoundError(key) from None

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[str]:
        """Iterate over the keys (in an order that may differ between replicas)."""
        return iter(self._values)

    def keys(self) -> Iterator[str]:
        """Iterate over the keys."""
        return iter(self._values)

    def items(self) -> Iterator[tuple[str, IPLDKind]]:
        """Iterate over ``(key, value)`` pairs."""
        return iter(self._values.items())

    def all(self) -> dict[str, IPLDKind]:
        """Return the whole map as a new dict."""
        return dict(self._values)

    def winner(self, key: str) -> SortKey | None:
        """Return the sort key of the operation that decides ``key`` (a tombstone's too), or None."""
        return self._winners.get(key)

    def winners(self) -> Iterator[tuple[str, SortKey]]:
        """Iterate over every key ever written (deleted ones too) with its deciding operation's sort key."""
        return iter(self._winners.items())

    # ------------------------------------------------------------------ writing

    def put(self, key: str, value: IPLDKind) -> CID:
        """Set ``key`` to ``value``.

        Returns:
            The CID of the entry written.

        Raises:
            InvalidOperationError: ``key`` is not a str or ``value`` is not an IPLD value.
            StoreClosedError: the store was closed.
        """
        return self._write((self._put_op(key, value),))[0].cid

    def delete(self, key: str) -> CID:
        """Delete ``key`` (writing a tombstone even if this replica does not hold it).

        Returns:
            The CID of the entry written.

        Raises:
            InvalidOperationError: ``key`` is not a str.
            StoreClosedError: the store was closed.
        """
        return self._write((self._del_op(key),))[0].cid

    def batch(self) -> KeyValueBatch:
        """Return a :class:`KeyValueBatch` writing to this store."""
        return KeyValueBatch(self)

    def _check_key(self, key: object) -> None:
        if type(key) is not str:
            raise InvalidOperationError(f"keys are str, not {type(key).__name__}: {key!r}", self.TYPE)

    def _put_op(self, key: str, value: IPLDKind) -> IPLDKind:
        self._check_key(key)
        return self._ipld({"op": "PUT", "key": key, "value": value}, f"value for key {key!r}")

    def _del_op(self, key: str) -> IPLDKind:
        self._check_key(key)
        return {"op": "DEL", "key": key}

    # ------------------------------------------------------------------ index

    def _apply(self, entry: Entry) -> bool:
        payload = entry.payload
        if type(payload) is not dict:
            return False
        key = payload.get("key")
        if type(key) is not str:
            return False
        op = payload.get("op")
        if op == "PUT":
            if "value" not in payload:
                return False
            sort_key = entry.sort_key
            if wins(sort_key, self._winners.get(key)):
                self._winners[key] = sort_key
                self._values[key] = payload["value"]
            return True
        if op == "DEL":
            sort_key = entry.sort_key
            if wins(sort_key, self._winners.get(key)):
                self._winners[key] = sort_key
                self._values.pop(key, None)
            return True
        return False

    def _dump(self) -> IPLDKind:
        # key -> [time, writer, cid, value] for a live key, [time, writer, cid] for a tombstone
        values = self._values
        state: dict[str, IPLDKind] = {}
        for key, sort_key in self._winners.items():
            record = sort_key_to_ipld(sort_key)
            if key in values:
                record.append(values[key])
            state[key] = record
        return state

    def _load(self, state: IPLDKind) -> None:
        if type(state) is not dict:
            raise InvalidCheckpointError("keyvalue state is a map")
        winners, values = self._winners, self._values
        for key, record in state.items():  # inline, not a call per key: it runs at every open
            if type(record) is list and len(record) == 4:
                time, writer, cid, values[key] = record
            elif type(record) is list and len(record) == 3:
                time, writer, cid = record
            else:
                raise InvalidCheckpointError(f"bad record for key {key!r}")
            if type(time) is not int or type(writer) is not bytes or type(cid) is not bytes:
                raise InvalidCheckpointError(f"a sort key is [time, writer, cid bytes], not {record[:3]!r}")
            winners[key] = (time, writer, cid)


class KeyValueBatch(Batch):
    """Puts and deletes collected for one fast append (see :class:`stores.base.Batch`).

    >>> from ipfs_log import Identity, Log, MemoryBlockStore
    >>> kv = KeyValue(Log(Identity.from_seed(b"k" * 32), MemoryBlockStore(), log_id="kv"))
    >>> with kv.batch() as batch:
    ...     for i in range(3):
    ...         batch.put(f"k{i}", i)
    >>> len(batch.entries), kv.all()
    (3, {'k0': 0, 'k1': 1, 'k2': 2})
    """

    _store: KeyValue

    def __init__(self, store: KeyValue) -> None:
        super().__init__(store)

    def put(self, key: str, value: IPLDKind) -> None:
        """Add a put of ``value`` under ``key``.

        Raises:
            InvalidOperationError: ``key`` is not a str or ``value`` is not an IPLD value.
        """
        self._payloads.append(self._store._put_op(key, value))

    def delete(self, key: str) -> None:
        """Add a deletion of ``key``.

        Raises:
            InvalidOperationError: ``key`` is not a str.
        """
        self._payloads.append(self._store._del_op(key))
