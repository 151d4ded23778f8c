"""Fault injection for the embedded store: LMDB environments whose operations fail on demand.

:func:`install` patches ``lmdb.open`` so environments opened under one directory are wrapped: every
``put`` (by named database), ``get``, ``cursor``, ``delete`` and ``commit`` of their transactions, and
every (re-)open, first asks :class:`Faults` whether to fail. A failure raises a real ``lmdb`` error (or
``OSError`` for an open), as the engine would on a full disk or an I/O error.
"""

from __future__ import annotations

import collections
import errno
from pathlib import Path
from typing import Any

import lmdb
import pytest

_REAL_OPEN = lmdb.open


class Faults:
    """Counts operations by kind and fails the ``nth`` of the armed kind."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.armed: tuple[str, int] | None = None
        self.failing: tuple[str, str] | None = None
        self.fired = False
        self.recording = False

    def arm(self, kind: str, nth: int) -> None:
        """Record operations from now on, and fail the ``nth`` of ``kind``."""
        self.counts.clear()
        self.armed = (kind, nth)
        self.failing = None
        self.fired = False
        self.recording = True

    def fail_every(self, kind: str, message: str) -> None:
        """Fail every operation of ``kind``, raising ``message``, from now on until :meth:`stop`."""
        self.counts.clear()
        self.armed = None
        self.failing = (kind, message)
        self.fired = False
        self.recording = True

    def count(self) -> None:
        """Record operations from now on, failing none."""
        self.counts.clear()
        self.armed = None
        self.failing = None
        self.recording = True

    def stop(self) -> None:
        """Stop recording (and disarm)."""
        self.armed = None
        self.failing = None
        self.recording = False

    def hit(self, kind: str) -> None:
        if not self.recording:
            return
        self.counts[kind] += 1
        if self.failing is not None and self.failing[0] == kind:
            self.fired = True
            raise _error(kind, self.failing[1])
        if self.armed == (kind, self.counts[kind]):
            self.armed = None
            self.fired = True
            raise _error(kind, f"injected failure: {kind}")


def _error(kind: str, message: str) -> Exception:
    """What the engine raises for a failed operation of ``kind``."""
    if kind == "open":
        return OSError(errno.EIO, message)
    if kind.startswith("put"):
        return lmdb.MapFullError(message)
    return lmdb.DiskError(message)


class _Txn:
    def __init__(self, txn: Any, faults: Faults, names: dict[int, str]) -> None:
        self._txn, self._faults, self._names = txn, faults, names

    def put(self, key: bytes, value: bytes, *args: Any, db: Any = None, **kwargs: Any) -> Any:
        self._faults.hit("put:" + self._names.get(id(db), "?"))
        return self._txn.put(key, value, *args, db=db, **kwargs)

    def get(self, key: bytes, default: Any = None, db: Any = None) -> Any:
        self._faults.hit("get")
        return self._txn.get(key, default, db=db)

    def delete(self, key: bytes, *args: Any, db: Any = None, **kwargs: Any) -> Any:
        self._faults.hit("delete")
        return self._txn.delete(key, *args, db=db, **kwargs)

    def cursor(self, db: Any = None) -> Any:
        self._faults.hit("cursor")
        return self._txn.cursor(db=db)

    def stat(self, db: Any) -> Any:
        return self._txn.stat(db)

    def commit(self) -> None:
        try:
            self._faults.hit("commit")
        except lmdb.Error:
            self._txn.abort()  # a failed LMDB commit frees its transaction
            raise
        self._txn.commit()

    def abort(self) -> None:
        self._txn.abort()


class _Env:
    def __init__(self, env: Any, faults: Faults) -> None:
        self._env, self._faults = env, faults
        self._names: dict[int, str] = {}

    def open_db(self, name: bytes, *args: Any, **kwargs: Any) -> Any:
        handle = self._env.open_db(name, *args, **kwargs)
        self._names[id(handle)] = name.decode()
        return handle

    def begin(self, *args: Any, **kwargs: Any) -> _Txn:
        return _Txn(self._env.begin(*args, **kwargs), self._faults, self._names)

    def sync(self, force: bool = False) -> None:
        self._env.sync(force)

    def close(self) -> None:
        self._env.close()


def install(monkeypatch: pytest.MonkeyPatch, under: Path) -> Faults:
    """Wrap every LMDB environment opened below ``under``; return the shared :class:`Faults`."""
    faults = Faults()
    root = str(under)

    def open_(path: str, *args: Any, **kwargs: Any) -> Any:
        if not path.startswith(root):
            return _REAL_OPEN(path, *args, **kwargs)
        faults.hit("open")
        return _Env(_REAL_OPEN(path, *args, **kwargs), faults)

    monkeypatch.setattr(lmdb, "open", open_)
    return faults
