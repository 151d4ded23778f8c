"""A block store on an IPFS node, over the Kubo HTTP RPC (:class:`~orbit.ipfs.KuboClient`).

Every block it returns was hashed and checked against its CID by the client; a block the node does
not produce within ``timeout`` seconds is missing (:class:`~orbit.errors.IpfsBlockUnavailableError`, a
``BlockNotFoundError``). ``get_many`` and ``put_many`` keep up to ``concurrency`` requests in flight,
over the client's connection pool: one ``block/get`` round trip to a local node is a millisecond or
two, one that the node must fetch from a peer over bitswap is about 250 ms whatever the block's size,
so a log's breadth-first frontier is fetched in parallel (what concurrency pays is measured by
``python bench/run.py kubo``).

Pinning: :meth:`IpfsBlockStore.pin` pins a database's heads recursively; orbit's ``next`` and ``refs``
are IPLD links, so the node then keeps the whole log. Pins move as heads change by pinning the new
heads, then unpinning the old (see :meth:`IpfsBlockStore.pin` for why not ``pin/update``).
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Final

from ipfs_log.cid import CID
from ipfs_log.errors import BlockNotFoundError, OrbitError
from orbit.car import car_bytes
from orbit.errors import IpfsError, IpfsHttpError, IpfsUnsupportedError
from orbit.ipfs.answers import verify_block
from orbit.ipfs.client import KuboClient

__all__ = ["DEFAULT_CONCURRENCY", "IMPORT_BYTES", "IMPORT_MIN", "PIN_TIMEOUT", "IpfsBlockStore"]

DEFAULT_CONCURRENCY = 16
PIN_TIMEOUT: Final = 600.0
"""Default bound of one pin (a walk of the whole log on the node: ten million entries fit in it)."""
"""Requests in flight for ``get_many``/``put_many`` (measured on js-ipfs: see bench/kubo.py and README)."""
IMPORT_MIN: Final = 8
"""``put_each`` of at least this many blocks uploads them as CAR files (``dag/import``)."""
IMPORT_BYTES: Final = 768 << 10
"""Largest CAR file one ``dag/import`` of ``put_each`` sends (js-ipfs refuses bodies over 1 MiB)."""

_log = logging.getLogger(__name__)


def _batches(items: dict[CID, bytes], limit: int) -> Iterator[list[tuple[CID, bytes]]]:
    """Split blocks into runs of at most ``limit`` bytes (a bigger block is a run of its own)."""
    batch: list[tuple[CID, bytes]] = []
    size = 0
    for cid, block in items.items():
        if batch and size + len(block) > limit:
            yield batch
            batch, size = [], 0
        batch.append((cid, block))
        size += len(block) + len(cid) + 10
    if batch:
        yield batch


class IpfsBlockStore:
    """Blocks on an IPFS node; implements the ``BlockStore`` protocol (get, get_many, put, put_many, has).

    Args:
        client: a :class:`~orbit.ipfs.KuboClient`, or an API address for a new one (default:
            ``$IPFS_API``, else ``http://127.0.0.1:5001``).
        timeout: seconds the node may take to produce one block (default: the client's block_timeout).
        concurrency: requests in flight for the batch forms.
        pin_writes: pin every block put (``block/put?pin=true``); off by default: pin heads instead.
        pin_timeout: seconds one :meth:`pin` may take: the node walks the whole log it pins (Kubo: about
            2 s per 100,000 entries here), so this grows with the history, unlike a block's timeout.

    Raises:
        IpfsAddressError: ``client`` is an address that is not understood.
    """

    def __init__(
        self,
        client: KuboClient | str | None = None,
        *,
        timeout: float | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        pin_writes: bool = False,
        pin_timeout: float = PIN_TIMEOUT,
    ) -> None:
        self.pin_timeout = pin_timeout
        self._owns_client = not isinstance(client, KuboClient)
        self.client = client if isinstance(client, KuboClient) else KuboClient(client)
        self.timeout = self.client.block_timeout if timeout is None else timeout
        self.concurrency = max(1, concurrency)
        self.pin_writes = pin_writes
        self._pool: ThreadPoolExecutor | None = None
        self._imports = True  # False once the node refused dag/import as unknown
        self._pool_lock = threading.Lock()

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="ipfs-blocks")
            return self._pool

    def get(self, cid: CID) -> bytes:
        """Return the block, fetched from the node and checked against ``cid``.

        Raises:
            IpfsBlockUnavailableError: the node did not produce it within the timeout (a
                ``BlockNotFoundError``).
            IpfsBlockMismatchError: the node's bytes do not hash to ``cid``.
            IpfsError: the node is unreachable, slow or answered an error.
        """
        return self.client.block_get(cid, timeout=self.timeout)

    def _get_or_none(self, cid: CID) -> bytes | None:
        try:
            return self.client.block_get(cid, timeout=self.timeout)
        except BlockNotFoundError:
            return None

    def get_many(self, cids: Iterable[CID]) -> dict[CID, bytes]:
        """Fetch blocks concurrently; those the node does not produce in time are absent.

        Raises:
            IpfsBlockMismatchError: a block does not hash to its CID (nothing is returned).
            IpfsError: the node is unreachable, slow or answered an error (the first such error;
                the other requests are cancelled or finish within their timeouts).
        """
        wanted = list(dict.fromkeys(cids))
        if len(wanted) <= 1:
            found = {cid: self._get_or_none(cid) for cid in wanted}
            return {cid: block for cid, block in found.items() if block is not None}
        futures = self._run_all(self._get_or_none, wanted)
        wait(futures.values())
        if any(future.cancelled() for future in futures.values()):
            raise _closed("block/get", None)
        return {cid: block for cid, future in futures.items() if (block := future.result()) is not None}

    def put(self, cid: CID, block: bytes) -> None:
        """Store a block on the node; returns once the node answered with the same CID.

        Raises:
            IpfsBlockTooLargeError: the block is over 2 MiB or the node's own limit.
            IpfsBlockMismatchError: the block does not hash to ``cid``, or the node stored it under
                another CID.
            IpfsError: the node is unreachable, slow or answered an error.
        """
        self.client.block_put(block, cid, pin=self.pin_writes)

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        """Store blocks on the node (as :meth:`put_each`: CAR files where it can); returns once all are.

        Raises:
            IpfsError: as :meth:`put`, for the first block that failed (others may have been stored).
        """
        failures = self.put_each(blocks)
        if failures:
            raise next(iter(failures.values()))

    def put_each(self, blocks: Iterable[tuple[CID, bytes]]) -> dict[CID, OrbitError]:
        """Store blocks on the node and report each failure instead of raising.

        Many blocks go in few requests: a CAR file per :data:`IMPORT_BYTES` through ``dag/import``
        (without pinning), each block checked against its CID here first since the node does not
        answer with them. Where the node has no ``dag/import``, or an import fails, the blocks go one
        ``block/put`` each, concurrently, which tells each block's fate.

        Returns:
            The blocks that were not stored, each with its error (empty when all were stored).
        """
        items = dict(blocks)
        failures: dict[CID, OrbitError] = {}
        if len(items) >= IMPORT_MIN and self._imports:
            for batch in _batches(items, IMPORT_BYTES):
                try:
                    for cid, block in batch:
                        verify_block(cid, block, "dag/import")
                except OrbitError:  # find out which: one block/put each
                    failures.update(self._put_each(dict(batch)))
                    continue
                try:
                    self.client.dag_import(io.BytesIO(car_bytes([batch[0][0]], batch)), pin_roots=False)
                except IpfsUnsupportedError:
                    self._imports = False
                    failures.update(self._put_each(dict(batch)))
                except OrbitError as e:
                    _log.info("dag/import of %d blocks failed, putting them one by one: %s", len(batch), e)
                    failures.update(self._put_each(dict(batch)))
            return failures
        return self._put_each(items)

    def _put_each(self, items: dict[CID, bytes]) -> dict[CID, OrbitError]:
        def attempt(cid: CID) -> OrbitError | None:
            try:
                self.put(cid, items[cid])
            except OrbitError as e:
                return e
            return None

        if len(items) <= 1:
            results = {cid: attempt(cid) for cid in items}
        else:
            pool = self._executor()
            futures = {cid: pool.submit(attempt, cid) for cid in items}
            wait(futures.values())
            results = {
                cid: _closed("block/put", cid) if future.cancelled() else future.result()
                for cid, future in futures.items()
            }
        return {cid: error for cid, error in results.items() if error is not None}

    def _run_all(
        self, work: Callable[[CID], bytes | None], cids: list[CID]
    ) -> dict[CID, Future[bytes | None]]:
        pool = self._executor()
        futures = {cid: pool.submit(work, cid) for cid in cids}
        done, pending = wait(futures.values(), return_when=FIRST_EXCEPTION)
        for future in done:
            error = _closed("block", None) if future.cancelled() else future.exception()
            if error is not None:
                for other in pending:
                    other.cancel()
                wait(pending)
                raise error
        return futures

    def has(self, cid: CID) -> bool:
        """Return whether the node holds the block locally (it does not ask its peers).

        Raises:
            IpfsError: the node is unreachable, slow or answered an error.
        """
        return self.client.block_has(cid, timeout=min(self.timeout, 1.0))

    def pin(self, heads: Iterable[CID], previous: Iterable[CID] = ()) -> None:
        """Pin ``heads`` recursively (each keeps everything it links to) and unpin ``previous`` ones.

        The new heads are pinned first (``pin/add``, which walks each DAG once, with a visited set),
        then the previous heads that are not among them are unpinned: the log is pinned throughout. A
        previous head that is not pinned (any more) is not an error.

        Not ``pin/update``: Kubo diffs the old and the new DAG pairwise, link by link, with no visited
        set, and an orbit log's skip links (``refs``) make that diff exponential in the log's depth (it
        ran for minutes on a 60-entry log).

        Raises:
            IpfsError: the node is unreachable, failed, or did not finish within :attr:`pin_timeout`
                (e.g. it lacks a head's blocks and looked for them that long).
        """
        new = dict.fromkeys(heads)  # in order, once each
        before = dict.fromkeys(previous)
        self.client.pin_add([cid for cid in new if cid not in before], timeout=self.pin_timeout)
        self.unpin([cid for cid in before if cid not in new])

    def unpin(self, cids: Iterable[CID]) -> None:
        """Remove recursive pins; CIDs that are not pinned are skipped.

        Raises:
            IpfsError: the node is unreachable or failed.
        """
        for cid in cids:
            try:
                self.client.pin_rm([cid])
            except IpfsHttpError as e:
                if "not pinned" not in e.kubo_message.lower():
                    raise

    def pinned(self, cids: Iterable[CID] | None = None) -> set[CID]:
        """Return the node's recursive pins, or those among ``cids``.

        Only recursive pins are listed: asking a node whether a CID is pinned *indirectly* makes it walk
        every pinned DAG, which js-ipfs does path by path (it never ends on an orbit log of a few dozen
        entries: the skip links multiply the paths).

        Raises:
            IpfsError: the node is unreachable or failed.
        """
        recursive = set(self.client.pin_ls(type="recursive"))
        return recursive if cids is None else recursive & set(cids)

    def close(self) -> None:
        """Stop the worker threads and close the client if this store created it. Idempotent."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> IpfsBlockStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"IpfsBlockStore({self.client.base_url!r}, concurrency={self.concurrency})"


def _closed(endpoint: str, cid: CID | None) -> IpfsError:
    """The error of a request cancelled because the store was closed while it waited."""
    return IpfsError("the IPFS block store was closed while the request waited", endpoint, cid)
