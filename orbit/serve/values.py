"""Values over HTTP: IPLD values as JSON, with DAG-JSON's forms for links and bytes, both ways.

A link is ``{"/": "<cid>"}`` and bytes are ``{"/": {"bytes": "<base64, no padding>"}}``, as on the
command line. Decoding is strict: anything that is not plain JSON or one of those two forms is refused
with a :class:`BadValue` naming where it is.
"""

from __future__ import annotations

import base64
from typing import Any

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind
from ipfs_log.errors import CodecError

__all__ = ["BadValue", "from_json", "to_json"]

MAX_DEPTH = 64
"""Deeper values are refused (the JSON parser would take them; the log's codec has its own limit)."""


class BadValue(ValueError):
    """A JSON value that is not an IPLD value; the message says where."""


def to_json(value: Any) -> Any:
    """Return an IPLD value as JSON data.

    >>> to_json({"a": b"hi", "n": [1, None]})
    {'a': {'/': {'bytes': 'aGk'}}, 'n': [1, None]}
    """
    if isinstance(value, CID):
        return {"/": str(value)}
    if isinstance(value, bytes):
        return {"/": {"bytes": base64.b64encode(value).decode().rstrip("=")}}
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def from_json(value: Any, where: str = "value", depth: int = 0) -> IPLDKind:
    """Return JSON data as an IPLD value.

    >>> from_json({"/": {"bytes": "aGk"}}), from_json([1, {"x": "y"}])
    (b'hi', [1, {'x': 'y'}])

    Raises:
        BadValue: a ``{"/": …}`` object is neither a link nor bytes, a float is not finite, or the value
            nests too deep.
    """
    if depth > MAX_DEPTH:
        raise BadValue(f"{where} nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        if "/" in value:
            inner = value["/"]
            if len(value) == 1:
                try:
                    if isinstance(inner, str):
                        return CID.parse(inner)
                    if (
                        isinstance(inner, dict)
                        and list(inner) == ["bytes"]
                        and isinstance(inner["bytes"], str)
                    ):
                        text = inner["bytes"]
                        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
                except (CodecError, ValueError) as e:
                    raise BadValue(f"{where} is a malformed DAG-JSON link or bytes: {e}") from None
            raise BadValue(f'{where}: an object with a "/" key is a link or bytes (DAG-JSON)')
        return {k: from_json(v, f"{where}.{k}", depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise BadValue(f"{where} is not a finite number")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise BadValue(f"{where} is not a JSON value")
