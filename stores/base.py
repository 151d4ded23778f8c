"""What every store has: an incremental index over a log, updates, joins, batches and checkpoints.

A store is a reducer over a :class:`~ipfs_log.Log`. Its state is what folding :meth:`Store._apply` over
the log's entries in log order gives, but it never refolds: the store subscribes to the log and applies
each entry once, as the log admits it, in O(1) or O(log n). Entries that a join admits may be *older*
(by the log's total order) than entries already applied, so every store resolves conflicts by comparing
``Entry.sort_key`` rather than by arrival order (see :func:`wins`), and so reaches the same state
whatever order the entries arrived in.

Entries joined from other writers are signed by a permitted writer but their payloads are not
otherwise trusted: an operation a store cannot apply (unknown ``op``, missing field, wrong type) is
ignored, and the index is left as it was. Ignored entries stay in the log and are not reported in
:class:`Update`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from typing import Any, ClassVar, Final, Self, TypeAlias, TypedDict

from ipfs_log import CID, BlockStore, Entry, Log, Progress
from ipfs_log.codec import IPLDKind, decode, encode
from ipfs_log.errors import CodecError
from ipfs_log.fetch import Fetched
from ipfs_log.frozen import Frozen, frozen_init
from stores.errors import InvalidCheckpointError, InvalidOperationError, StoreClosedError

__all__ = ["CHECKPOINT_VERSION", "Batch", "Sharing", "SortKey", "Store", "Update", "UpdateCallback", "wins"]

SortKey: TypeAlias = tuple[int, bytes, bytes]
"""``Entry.sort_key``: ``(clock time, writer key, CID bytes)``, the log's total order."""

CHECKPOINT_VERSION: Final = 1


def wins(incoming: SortKey, current: SortKey | None) -> bool:
    """Return whether an operation at ``incoming`` replaces the one at ``current`` (last writer wins).

    This is the one conflict rule of every store: per key, the operation of the entry that is last in
    the log's total order wins, whatever order the entries were applied in. Deletions keep their sort
    key as a tombstone, so an older write that arrives later does not bring a key back.

    >>> wins((2, b"a", b"x"), (1, b"z", b"z")), wins((1, b"a", b"x"), (1, b"b", b"a"))
    (True, False)
    >>> wins((1, b"a", b"x"), None)
    True
    """
    return current is None or incoming > current


class Update(Frozen):
    """What a store just applied, as passed to :meth:`Store.subscribe` callbacks."""

    __match_args__ = ("entries", "local")
    __slots__ = __match_args__
    entries: tuple[Entry, ...]
    """The entries just applied, in log order (entries whose operation was ignored are left out)."""
    local: bool
    """True for this replica's own writes, False for entries joined from elsewhere."""

    def __init__(self, entries: tuple[Entry, ...], local: bool) -> None:
        frozen_init(self, entries, local)


UpdateCallback: TypeAlias = Callable[[Update], None]


class Sharing(TypedDict, total=False):
    """What an owner that shares a store between threads gives its constructor (see :class:`Store`)."""

    guard: AbstractContextManager[Any]
    """Held around every write and join: the owner's lock."""
    closed_error: type[StoreClosedError]
    """What a write to a closed store raises (a subclass of :class:`~stores.errors.StoreClosedError`)."""


class Store(abc.ABC):
    """A database type whose state is derived from a log.

    Args:
        log: the log the store reads and writes; the store follows every entry the log admits,
            whether appended through the store, through the log, or joined.
        checkpoint: a value returned by :meth:`checkpoint`, taken when the log had its current heads;
            the index is restored from it without replaying the log.
        catch_up: with ``checkpoint``, the entries the log admitted after the checkpoint was taken
            (the caller vouches for that, e.g. from an admission counter kept with the log): they are
            applied on top of it, and the checkpoint's heads are not compared with the log's.
        **options: options of the store type (see each type); unknown ones raise TypeError.

    Raises:
        InvalidCheckpointError: the checkpoint is malformed, of another store type, or was taken at
            other heads than the log's.
    """

    TYPE: ClassVar[str]
    """The store type's name: ``"eventlog"``, ``"keyvalue"``, ``"counter"`` or ``"documents"``."""

    def __init__(
        self,
        log: Log,
        *,
        checkpoint: IPLDKind | None = None,
        catch_up: Sequence[Entry] = (),
        guard: AbstractContextManager[Any] | None = None,
        closed_error: type[StoreClosedError] = StoreClosedError,
    ) -> None:
        self._log = log
        self._new_index()
        self.guard: AbstractContextManager[Any] = nullcontext() if guard is None else guard
        """Held around every write and join (a lock, when the store is shared between threads)."""
        self.closed_error = closed_error
        """What a write to a closed store raises."""
        self._subscribers: list[UpdateCallback] = []
        self._origin: bool | None = None  # set while the store itself appends (True) or joins (False)
        self._unsubscribe: Callable[[], None] | None = None
        replay: Iterable[Entry] = log
        if checkpoint is not None:
            self._restore(checkpoint, check_heads=not catch_up)
            replay = catch_up
        apply, applied = self._apply, 0
        for applied, entry in enumerate(replay, 1):  # noqa: B007  (the last count is kept)
            apply(entry)
        self._applied = applied
        self._unsubscribe = log.subscribe(self._on_entries)

    # ------------------------------------------------------------------ subclass hooks

    def _new_index(self) -> None:  # noqa: B027  (an optional hook)
        """Set up the empty index, before the checkpoint or the log is applied (nothing by default)."""

    @abc.abstractmethod
    def _apply(self, entry: Entry) -> bool:
        """Apply one entry to the index; return False (changing nothing) if its op cannot be applied."""

    @abc.abstractmethod
    def _dump(self) -> IPLDKind:
        """Return the index as one IPLD value."""

    @abc.abstractmethod
    def _load(self, state: IPLDKind) -> None:
        """Restore the index from :meth:`_dump`'s value; raise TypeError, ValueError or KeyError if bad."""

    @abc.abstractmethod
    def batch(self) -> Batch:
        """Return a batch: operations collected, then appended together as one fast chain of entries."""

    # ------------------------------------------------------------------ public API

    @property
    def log(self) -> Log:
        """The log this store is derived from."""
        return self._log

    @property
    def applied(self) -> int:
        """How many entries the index has been given since the store was built, ignored ones included.

        Building it gives it every entry of the log, or, from a checkpoint, only the ``catch_up``
        entries; each entry the log admits afterwards adds one. So it shows what opening a store
        cost (a checkpoint that lags shows as a large catch-up) and that a reopen replays nothing.
        """
        return self._applied

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._unsubscribe is None

    def subscribe(self, callback: UpdateCallback) -> Callable[[], None]:
        """Call ``callback`` with an :class:`Update` after each batch of entries the store applies.

        Callbacks run synchronously, after the index has applied the whole batch, for local writes
        and for joined entries alike. An exception raised by a callback propagates to the writer.

        Returns:
            A function that unsubscribes ``callback`` (calling it twice is harmless).
        """
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def join(self, other: Store | Log, *, progress: Progress | None = None) -> list[Entry]:
        """Merge another replica's log (or store's log) into this store's log and index.

        Returns:
            The entries newly admitted to the log, in log order.

        Raises:
            StoreClosedError: the store was closed.
            EntryRejectedError: an entry failed verification; nothing from this join was admitted.
            BlockNotFoundError: a block is missing; what was complete was admitted and applied.
        """
        log = other.log if isinstance(other, Store) else other
        return self.join_heads(log.head_cids, source=log.store, progress=progress)

    def join_heads(
        self,
        heads: Iterable[CID],
        *,
        source: BlockStore | None = None,
        progress: Progress | None = None,
    ) -> list[Entry]:
        """Fetch, verify and admit what is reachable from ``heads``, and apply it to the index.

        Returns:
            The entries newly admitted to the log, in log order.

        Raises:
            StoreClosedError: the store was closed.
            EntryRejectedError: an entry failed verification; nothing from this join was admitted.
            BlockNotFoundError: a block is missing; what was complete was admitted and applied.
        """
        with self.guard:
            self._check_open()
            previous, self._origin = self._origin, False
            try:
                return self._log.join_heads(heads, source=source, progress=progress)
            finally:
                self._origin = previous

    def admit(self, fetched: Fetched) -> list[Entry]:
        """Admit what a :meth:`ipfs_log.Log.fetch` flow over this store's log found, and apply it.

        For callers that fetch outside :attr:`guard` (concurrently, or over a network) and admit
        under it.

        Returns:
            The entries newly admitted to the log, in log order.

        Raises:
            StoreClosedError: the store was closed.
            EntryRejectedError: an entry failed verification; nothing was admitted.
            BlockNotFoundError: a block is missing; what was complete was admitted and applied.
        """
        with self.guard:
            self._check_open()
            previous, self._origin = self._origin, False
            try:
                return self._log.admit(fetched)
            finally:
                self._origin = previous

    def checkpoint(self) -> IPLDKind:
        """Return the whole index, and the heads it was taken at, as one IPLD value.

        Pass it as ``checkpoint=`` to the store's constructor, over a log with the same heads, to
        restore the index without replaying the log. It encodes with :func:`ipfs_log.codec.encode`.
        """
        return {
            "type": self.TYPE,
            "v": CHECKPOINT_VERSION,
            "heads": list(self._log.head_cids),
            "state": self._dump(),
        }

    def close(self) -> None:
        """Stop following the log; later writes and joins raise :class:`StoreClosedError`."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._log.id!r}, {len(self._log)} entries)"

    # ------------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._unsubscribe is None:
            raise self.closed_error(f"{self.TYPE} store over log {self._log.id!r} is closed")

    def _write(self, payloads: Sequence[IPLDKind]) -> list[Entry]:
        """Append already validated payloads as one chain; the subscription applies them."""
        with self.guard:
            self._check_open()
            previous, self._origin = self._origin, True
            try:
                return self._log.append_many(payloads)
            except CodecError as e:  # payloads are validated first; this is a safety net
                raise InvalidOperationError(str(e), self.TYPE) from e
            finally:
                self._origin = previous

    def _ipld(self, payload: IPLDKind, what: str) -> IPLDKind:
        """Return a private copy of ``payload`` exactly as every replica will decode it.

        Raises:
            InvalidOperationError: ``payload`` is not an IPLD value.
        """
        try:
            return decode(encode(payload))
        except CodecError as e:
            raise InvalidOperationError(f"{what} is not an IPLD value ({e})", self.TYPE) from e

    def _on_entries(self, entries: Sequence[Entry]) -> None:
        self._applied += len(entries)
        apply = self._apply
        applied = [e for e in entries if apply(e)]
        if not applied or not self._subscribers:
            return
        local = self._origin
        if local is None:  # appended or joined through the log directly
            own = self._log.identity.public_key
            local = all(e.key == own for e in applied)
        update = Update(tuple(applied), local)
        for callback in list(self._subscribers):
            callback(update)

    def _restore(self, checkpoint: IPLDKind, *, check_heads: bool) -> None:
        if not isinstance(checkpoint, dict) or checkpoint.keys() != {"type", "v", "heads", "state"}:
            raise InvalidCheckpointError("a checkpoint is a map {type, v, heads, state}")
        if checkpoint["type"] != self.TYPE:
            raise InvalidCheckpointError(f"checkpoint of a {checkpoint['type']!r} store, not {self.TYPE!r}")
        if checkpoint["v"] != CHECKPOINT_VERSION:
            raise InvalidCheckpointError(f"unsupported checkpoint version {checkpoint['v']!r}")
        heads = checkpoint["heads"]
        if not isinstance(heads, list) or (check_heads and set(heads) != set(self._log.head_cids)):
            raise InvalidCheckpointError(
                f"checkpoint was taken at other heads than those of log {self._log.id!r}"
            )
        try:
            self._load(checkpoint["state"])
        except InvalidCheckpointError:
            raise
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
            raise InvalidCheckpointError(f"malformed {self.TYPE} checkpoint state: {e!r}") from e


def sort_key_to_ipld(key: SortKey) -> list[IPLDKind]:
    """Return a sort key as an IPLD list ``[time, writer, cid bytes]``."""
    return [key[0], key[1], key[2]]


def sort_key_from_ipld(value: IPLDKind) -> SortKey:
    """Read back :func:`sort_key_to_ipld`'s value.

    Raises:
        InvalidCheckpointError: the value is not ``[int, bytes, bytes]``.
    """
    if type(value) is list and len(value) == 3:
        time, writer, cid = value
        if type(time) is int and type(writer) is bytes and type(cid) is bytes:
            return (time, writer, cid)
    raise InvalidCheckpointError(f"a sort key is [time, writer, cid bytes], not {value!r}")


class Batch:
    """Operations collected and validated one by one, then appended with one ``Log.append_many``.

    Use it as a context manager: the operations are written when the block exits without an exception,
    and dropped otherwise. Each operation is validated when it is added, so bad input raises at once
    and nothing of the batch is written. Later operations in a batch win over earlier ones.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._payloads: list[IPLDKind] = []
        self.entries: list[Entry] = []
        """The entries written by :meth:`commit` so far."""

    def __len__(self) -> int:
        return len(self._payloads)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self._payloads.clear()

    def commit(self) -> list[Entry]:
        """Append the collected operations now, as one chain of entries, and start a new batch.

        Returns:
            The entries written, one per operation, in order.

        Raises:
            StoreClosedError: the store was closed.
        """
        payloads, self._payloads = self._payloads, []
        entries = self._store._write(payloads) if payloads else []
        self.entries.extend(entries)
        return entries
