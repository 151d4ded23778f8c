"""Small immutable value classes without :mod:`dataclasses`.

A frozen dataclass is generated when its module is imported: importing :mod:`dataclasses` (which loads
:mod:`inspect`, :mod:`ast` and :mod:`tokenize`) and generating one class cost as much, together, as a
fifth of a short command's run (``orbit get``). The classes every command loads (clocks, entries, ranges,
manifests) derive from :class:`Frozen` instead: fields are named, in order, by ``__match_args__`` (as
a dataclass's are, for ``match``) and are the ``__slots__``, set once in ``__init__`` with
:func:`frozen_init`; equality, hashing, ``repr``, copying and pickling follow from them, and
assigning a field raises :class:`AttributeError` (as a frozen dataclass does).

>>> class Point(Frozen):
...     __match_args__ = ("x", "y")
...     __slots__ = __match_args__
...     x: int
...     y: int
...
...     def __init__(self, x: int, y: int = 0) -> None:
...         frozen_init(self, x, y)
>>> p = Point(1)
>>> p, p == Point(1, 0), p == Point(2), len({p, Point(1)})
(Point(x=1, y=0), True, False, 1)
>>> p.x = 3
Traceback (most recent call last):
AttributeError: cannot assign to field 'x': Point is immutable
"""

from __future__ import annotations

from typing import Any, dataclass_transform

__all__ = ["Frozen", "frozen_init"]

_set = object.__setattr__


def frozen_init(instance: Frozen, *values: object) -> None:
    """Set ``instance``'s fields (``__match_args__``, in order) to ``values``: what ``__init__`` calls."""
    for name, value in zip(type(instance).__match_args__, values, strict=True):
        _set(instance, name, value)


@dataclass_transform(frozen_default=True)  # type checkers treat subclasses as frozen dataclasses
class Frozen:
    """Base of a value class whose fields are its ``__match_args__`` (see the module's text)."""

    __slots__ = ()
    __match_args__: tuple[str, ...] = ()

    def field_values(self) -> tuple[Any, ...]:
        """The values of the fields, in order."""
        return tuple([getattr(self, name) for name in type(self).__match_args__])

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: {type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: {type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.field_values() == other.field_values()

    def __hash__(self) -> int:
        return hash(self.field_values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in type(self).__match_args__)
        return f"{type(self).__qualname__}({shown})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self.field_values())
