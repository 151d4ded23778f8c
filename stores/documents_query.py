"""A small query language over documents: conditions ``FIELD OP VALUE``, all of which must hold.

``OP`` is one of ``=  !=  <  <=  >  >=  ~``. ``=`` and ``!=`` compare IPLD values (so ``1`` and
``1.0`` differ, and lists and maps compare whole); ``<`` ``<=`` ``>`` ``>=`` compare two numbers or two
strings (anything else does not match); ``~`` is "contains": a substring of a string, or a member of a
list. A document without the field matches only ``!=``. The value is JSON, or else plain text
(``city=London``); a caller may bring its own value syntax (the command line reads DAG-JSON's bytes and
links too).

Pure: no I/O. A :class:`Query` is a predicate for :meth:`stores.Documents.query` (a scan).

>>> query = parse_query(["born>1900", "city!=Paris"])
>>> [str(c) for c in query.conditions]
['born>1900', 'city!="Paris"']
>>> query({"_id": "alan", "born": 1912, "city": "London"}), query({"_id": "ada", "born": 1815})
(True, False)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ipfs_log.codec import IPLDKind, encode
from ipfs_log.errors import CodecError
from stores.errors import StoreError

__all__ = [
    "OPERATORS",
    "Condition",
    "Query",
    "QuerySyntaxError",
    "json_or_text",
    "parse_condition",
    "parse_query",
]

OPERATORS: Final = ("!=", "<=", ">=", "=", "<", ">", "~")
"""The operators a condition may use."""

ValueParser = Callable[[str], IPLDKind]


class QuerySyntaxError(StoreError, ValueError):
    """A condition is not ``FIELD OP VALUE``.

    Attributes:
        text: the condition as given.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(f"a condition is FIELD=VALUE (or != < <= > >= ~), not {text!r}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def json_or_text(text: str) -> IPLDKind:
    """Return ``text`` parsed as JSON, or ``text`` itself if it is not JSON (NaN and Infinity are not).

    >>> json_or_text("1906"), json_or_text('"1906"'), json_or_text("London"), json_or_text("NaN")
    (1906, '1906', 'London', 'NaN')
    """
    try:
        value: IPLDKind = json.loads(text, parse_constant=_no_constant)
    except ValueError:
        return text
    return value


@dataclass(frozen=True, slots=True)
class Condition:
    """One condition ``FIELD OP VALUE`` on a document."""

    field: str
    """The document field it is about."""
    op: str
    """One of :data:`OPERATORS`."""
    value: IPLDKind
    """The value the field is compared with."""

    def __post_init__(self) -> None:
        if not self.field or self.op not in OPERATORS:
            raise QuerySyntaxError(f"{self.field}{self.op}{self.value!r}")

    def __str__(self) -> str:
        """The condition as text, the value as JSON (or as its repr if it holds bytes or links)."""
        try:
            value = json.dumps(self.value, ensure_ascii=False)
        except TypeError:
            value = repr(self.value)
        return f"{self.field}{self.op}{value}"

    def matches(self, doc: Mapping[str, Any]) -> bool:
        """Return whether ``doc`` satisfies the condition (see the module documentation).

        >>> Condition("tags", "~", "db").matches({"tags": ["db", "crdt"]})
        True
        >>> Condition("age", ">", 30).matches({"age": "31"})  # a string is not a number
        False
        """
        if self.field not in doc:
            return self.op == "!="
        have, value, op = doc[self.field], self.value, self.op
        try:
            if op == "=":
                return encode(have) == encode(value)
            if op == "!=":
                return encode(have) != encode(value)
            if op == "~":
                if isinstance(have, str) and isinstance(value, str):
                    return value in have
                return isinstance(have, list) and any(encode(v) == encode(value) for v in have)
        except CodecError:  # not an IPLD value: equal to nothing
            return False
        if isinstance(have, bool) or isinstance(value, bool):
            return False
        if isinstance(have, int | float) and isinstance(value, int | float):
            return _compare(op, have, value)
        if isinstance(have, str) and isinstance(value, str):
            return _compare(op, have, value)
        return False


def _compare(op: str, have: Any, value: Any) -> bool:
    if op == "<":
        return bool(have < value)
    if op == "<=":
        return bool(have <= value)
    if op == ">":
        return bool(have > value)
    return bool(have >= value)


@dataclass(frozen=True, slots=True)
class Query:
    """Conditions that must all hold: a predicate over documents (``Documents.query(query)``)."""

    conditions: tuple[Condition, ...]

    def __call__(self, doc: Mapping[str, Any]) -> bool:
        """Return whether ``doc`` satisfies every condition."""
        return all(c.matches(doc) for c in self.conditions)


def parse_condition(text: str, parse_value: ValueParser = json_or_text) -> Condition:
    """Parse ``FIELD OP VALUE``: the field ends at the first operator after its first character.

    Args:
        text: the condition, e.g. ``"born>=1900"``.
        parse_value: reads the text after the operator (by default :func:`json_or_text`).

    Raises:
        QuerySyntaxError: no operator follows a field.

    >>> parse_condition("born>=1900"), parse_condition("city=London")
    (Condition(field='born', op='>=', value=1900), Condition(field='city', op='=', value='London'))
    """
    best: tuple[int, str] | None = None
    for op in OPERATORS:
        at = text.find(op)
        if at > 0 and (best is None or at < best[0] or (at == best[0] and len(op) > len(best[1]))):
            best = (at, op)
    if best is None:
        raise QuerySyntaxError(text)
    at, op = best
    return Condition(text[:at], op, parse_value(text[at + len(op) :]))


def parse_query(texts: Iterable[str], parse_value: ValueParser = json_or_text) -> Query:
    """Parse conditions that must all hold (see :func:`parse_condition`).

    Raises:
        QuerySyntaxError: a condition is not ``FIELD OP VALUE``.
    """
    return Query(tuple(parse_condition(t, parse_value) for t in texts))
