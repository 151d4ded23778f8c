"""What the keyvalue and documents databases share: reads of a map from string keys to values."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Generic, Protocol, TypeVar, cast

from orbit.databases.base import Database, S, locked

__all__ = ["KeyedDatabase", "KeyedStore"]

V = TypeVar("V")


class KeyedStore(Protocol[V]):
    """The reads a store keyed by strings offers (``stores.KeyValue``, ``stores.Documents``)."""

    def get(self, key: str, default: V | None = None) -> V | None: ...  # noqa: D102
    def __getitem__(self, key: str) -> V: ...
    def __contains__(self, key: object) -> bool: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[str]: ...
    def keys(self) -> Iterable[str]: ...  # noqa: D102
    def items(self) -> Iterable[tuple[str, V]]: ...  # noqa: D102
    def all(self) -> dict[str, V]: ...  # noqa: D102


class KeyedDatabase(Database[S], Generic[S, V]):
    """A database whose store maps string keys to values of type ``V``; every read takes the lock."""

    @property
    def _map(self) -> KeyedStore[V]:
        return cast("KeyedStore[V]", self.store)

    @locked
    def get(self, key: str, default: V | None = None) -> V | None:
        """Return the value under ``key``, or ``default``."""
        return self._map.get(key, default)

    @locked
    def __getitem__(self, key: str) -> V:
        """Return the value under ``key``; raise :class:`~stores.KeyNotFoundError` if none."""
        return self._map[key]

    @locked
    def __contains__(self, key: object) -> bool:
        return key in self._map

    @locked
    def __len__(self) -> int:
        return len(self._map)

    @locked
    def __iter__(self) -> Iterator[str]:
        """Iterate over a copy of the keys."""
        return iter(list(self._map))

    @locked
    def keys(self) -> list[str]:
        """Return the keys."""
        return list(self._map.keys())

    @locked
    def items(self) -> list[tuple[str, V]]:
        """Return the ``(key, value)`` pairs."""
        return list(self._map.items())

    @locked
    def all(self) -> dict[str, V]:
        """Return every value by key, as a new dict."""
        return self._map.all()
