"""Index checkpoints: each store's index saved beside its log, so reopening does not replay the log.

A checkpoint record is ``magic (4) | HMAC-SHA256 (32) | admitted (8, big-endian) | DAG-CBOR state``.
``admitted`` is how many entries the log had admitted when it was taken: after a kill, the entries
admitted since (the log's order index records each entry's admission number) are applied on top of
it. The MAC is keyed from the identity's seed and covers the database address, so a checkpoint cannot
be forged by someone who can write the directory but does not hold the key, nor moved to another
database. A record that does not match is ignored (the index is rebuilt from the log), never trusted.

A checkpoint only ever covers committed entries: the log changes its memory, and so the store its
index, only after the entries were committed (see :class:`ipfs_log.storage.LogStorage`).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Final

from ipfs_log.codec import IPLDKind, decode, encode
from ipfs_log.errors import CodecError
from orbit.storage.env import Environment, guarded
from orbit.storage.layout import log_prefix

__all__ = ["Checkpoints"]

_MAGIC: Final = b"OCK2"
_HEADER: Final = len(_MAGIC) + 32 + 8


class Checkpoints:
    """The checkpoints of the stored logs of an environment, authenticated with ``mac_key``."""

    def __init__(self, env: Environment, mac_key: bytes) -> None:
        self.env = env
        self._mac_key = mac_key

    def _mac(self, address: str, body: bytes) -> bytes:
        return hmac.new(self._mac_key, address.encode() + b"\0" + body, hashlib.sha256).digest()

    def seal(self, address: str, admitted: int, state: IPLDKind) -> bytes:
        """Return the checkpoint record of ``state``, taken when the log had admitted ``admitted``."""
        body = admitted.to_bytes(8, "big") + encode(state)
        return _MAGIC + self._mac(address, body) + body

    def unseal(self, address: str, raw: bytes | None) -> tuple[int, IPLDKind] | None:
        """Return ``(admitted, state)`` of an authentic record, or None (absent, forged, malformed)."""
        if raw is None or raw[:4] != _MAGIC or len(raw) < _HEADER:
            return None
        mac, body = raw[4:36], raw[36:]
        if not hmac.compare_digest(mac, self._mac(address, body)):
            return None
        try:
            return int.from_bytes(body[:8], "big"), decode(body[8:])
        except CodecError:
            return None

    @guarded("read a checkpoint")
    def load(self, lognum: int, address: str) -> tuple[int, IPLDKind] | None:
        """Return the authentic checkpoint of log number ``lognum`` as ``(admitted, state)``, or None."""
        raw = self.env.reader().get(log_prefix(lognum), db=self.env.db[b"checkpoints"])
        return self.unseal(address, None if raw is None else bytes(raw))

    @guarded("save a checkpoint")
    def save(self, lognum: int, address: str, admitted: int, state: IPLDKind) -> None:
        """Store the checkpoint in one commit; when it raises, the previous checkpoint stays."""
        raw = self.seal(address, admitted, state)
        self.env.write(lambda txn: self.put(txn, lognum, raw))

    def put(self, txn: Any, lognum: int, raw: bytes) -> None:
        """Write a sealed checkpoint record in ``txn``, a write transaction of a larger commit."""
        txn.put(log_prefix(lognum), raw, db=self.env.db[b"checkpoints"])
