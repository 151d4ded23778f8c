r"""Draw a log's DAG in the terminal, as ``git log --graph`` draws commits.

Entries come newest first (the log's total order reversed, so every entry comes before its parents).
Each column waits for one entry; an entry takes the leftmost column waiting for it, the other columns
waiting for it merge into it first (``|/``), and after it its column forks into one column per entry
it names in ``next`` (``|\``). An entry no column waits for (a head) opens a new column on the right.

>>> rows = graph_rows([("m", ["a", "b"]), ("b", ["r"]), ("a", ["r"]), ("r", [])])
>>> print("\n".join(text.rstrip() for text, _ in rows))
*
|\
| *
* |
|/
*
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import TypeVar

__all__ = ["graph_rows"]

K = TypeVar("K", bound=Hashable)


def graph_rows(nodes: Iterable[tuple[K, Sequence[K]]]) -> list[tuple[str, int | None]]:
    """Return the graph's rows: ``(text, i)`` for the row of the ``i``-th node, ``(text, None)`` for an edge.

    The texts are padded to one width so that what follows them lines up.
    """
    rows: list[tuple[str, int | None]] = []
    cols: list[K] = []
    for index, (key, parents) in enumerate(nodes):
        hits = [i for i, c in enumerate(cols) if c == key]
        if not hits:
            cols.append(key)
            hits = [len(cols) - 1]
        me = hits[0]
        if len(hits) > 1:  # other columns waiting for this entry merge into its column
            kept = [i for i in range(len(cols)) if i not in hits[1:]]
            moves = [(i, new) for new, i in enumerate(kept)] + [(i, me) for i in hits[1:]]
            rows += [(t, None) for t in _transition(moves)]
            cols = [cols[i] for i in kept]
        rows.append((" ".join("*" if i == me else "|" for i in range(len(cols))), index))
        unique = list(dict.fromkeys(parents))
        moves = []
        for i in range(len(cols)):
            if i < me:
                moves.append((i, i))
            elif i == me:
                moves += [(me, me + k) for k in range(len(unique))]
            else:
                moves.append((i, i + len(unique) - 1))
        rows += [(t, None) for t in _transition(moves)]
        cols = cols[:me] + unique + cols[me + 1 :]
    width = max((len(t) for t, _ in rows), default=0)
    return [(t.ljust(width), i) for t, i in rows]


def _transition(moves: list[tuple[int, int]]) -> list[str]:
    """The edge rows taking each column from ``src`` to ``dst``, one position per row."""
    steps = max((abs(dst - src) for src, dst in moves), default=0)
    out = []
    for s in range(steps):
        chars: dict[int, str] = {}
        for src, dst in moves:
            sign = (dst > src) - (dst < src)
            p = src + sign * min(s, abs(dst - src))
            q = src + sign * min(s + 1, abs(dst - src))
            if q == p:
                chars.setdefault(2 * p, "|")
            elif q < p:
                chars[2 * p - 1] = "/"
            else:
                chars[2 * p + 1] = "\\"
        width = max(chars) + 1
        out.append("".join(chars.get(i, " ") for i in range(width)).rstrip())
    return out
