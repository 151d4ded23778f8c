"""Counter: a PN-counter whose entries each carry one signed amount.

The operation is ``{"op": "INC", "value": n}`` with ``n`` a (possibly negative) int; the counter's
value is the sum of every amount in the log. Sums commute, so no conflict rule is needed: each entry is
added exactly once, when the log admits it. Totals per writer are kept too.

>>> from ipfs_log import Identity, Log, MemoryBlockStore
>>> counter = Counter(Log(Identity.from_seed(b"c" * 32), MemoryBlockStore(), log_id="c"))
>>> _ = counter.inc(), counter.inc(5), counter.dec(2)
>>> counter.value
4
"""

from __future__ import annotations

from typing import ClassVar, Final

from ipfs_log import CID, Entry
from ipfs_log.codec import IPLDKind
from stores.base import Batch, Store
from stores.errors import InvalidCheckpointError, InvalidOperationError

__all__ = ["Counter", "CounterBatch"]

_MIN: Final = -(2**64)  # the range of a DAG-CBOR integer
_MAX: Final = 2**64 - 1


class Counter(Store):
    """A PN-counter over a log.

    Args:
        log: the log the store follows.
        checkpoint: restore the index from :meth:`checkpoint` instead of replaying the log.

    Raises:
        InvalidCheckpointError: the checkpoint cannot be restored over this log.
    """

    TYPE: ClassVar[str] = "counter"

    def _new_index(self) -> None:
        self._value = 0
        self._totals: dict[bytes, int] = {}

    @property
    def value(self) -> int:
        """The sum of every amount in the log."""
        return self._value

    @property
    def totals(self) -> dict[bytes, int]:
        """Each writer's (public key's) net contribution to :attr:`value`, as a new dict."""
        return dict(self._totals)

    def inc(self, n: int = 1) -> CID:
        """Add ``n`` (which may be negative) to the counter.

        Returns:
            The CID of the entry written.

        Raises:
            InvalidOperationError: ``n`` is not an int (a bool is not) or is outside DAG-CBOR's
                integer range, -2**64 to 2**64 - 1.
            StoreClosedError: the store was closed.
        """
        return self._write((self._inc_op(n, "inc"),))[0].cid

    def dec(self, n: int = 1) -> CID:
        """Subtract ``n`` from the counter.

        Returns:
            The CID of the entry written.

        Raises:
            InvalidOperationError: ``n`` is not an int, or ``-n`` is outside DAG-CBOR's integer range.
            StoreClosedError: the store was closed.
        """
        return self._write((self._dec_op(n),))[0].cid

    def batch(self) -> CounterBatch:
        """Return a :class:`CounterBatch` writing to this store."""
        return CounterBatch(self)

    def __repr__(self) -> str:
        return f"Counter({self._log.id!r}, value={self._value})"

    def _inc_op(self, n: int, method: str) -> IPLDKind:
        if type(n) is not int:
            raise InvalidOperationError(f"{method}() takes an int, not {type(n).__name__}: {n!r}", self.TYPE)
        if not _MIN <= n <= _MAX:
            raise InvalidOperationError(f"{method}() amount {n} is outside -2**64 .. 2**64-1", self.TYPE)
        return {"op": "INC", "value": n}

    def _dec_op(self, n: int) -> IPLDKind:
        if type(n) is not int:
            raise InvalidOperationError(f"dec() takes an int, not {type(n).__name__}: {n!r}", self.TYPE)
        return self._inc_op(-n, "dec")

    # ------------------------------------------------------------------ index

    def _apply(self, entry: Entry) -> bool:
        payload = entry.payload
        if type(payload) is not dict or payload.get("op") != "INC":
            return False
        amount = payload.get("value")
        if type(amount) is not int:
            return False
        self._value += amount
        self._totals[entry.key] = self._totals.get(entry.key, 0) + amount
        return True

    def _dump(self) -> IPLDKind:
        # [[writer, total]…] sorted by writer; a total beyond DAG-CBOR's integer range is a decimal string
        totals = sorted(self._totals.items())
        return [[key, total if _MIN <= total <= _MAX else str(total)] for key, total in totals]

    def _load(self, state: IPLDKind) -> None:
        if type(state) is not list:
            raise InvalidCheckpointError("counter state is a list of [writer, total]")
        for record in state:
            if type(record) is not list or len(record) != 2:
                raise InvalidCheckpointError(f"bad counter record {record!r}")
            key, total = record
            if type(key) is not bytes or isinstance(total, bool) or not isinstance(total, int | str):
                raise InvalidCheckpointError(f"bad counter record {record!r}")
            amount = int(total)
            self._totals[key] = amount
            self._value += amount


class CounterBatch(Batch):
    """Increments collected for one fast append (see :class:`stores.base.Batch`)."""

    _store: Counter

    def __init__(self, store: Counter) -> None:
        super().__init__(store)

    def inc(self, n: int = 1) -> None:
        """Add an increment by ``n``.

        Raises:
            InvalidOperationError: ``n`` is not an int or is out of range.
        """
        self._payloads.append(self._store._inc_op(n, "inc"))

    def dec(self, n: int = 1) -> None:
        """Add a decrement by ``n``.

        Raises:
            InvalidOperationError: ``n`` is not an int or is out of range.
        """
        self._payloads.append(self._store._dec_op(n))
