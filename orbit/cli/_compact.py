"""``orbit compact``: drop a database's history under this replica's own newest commit."""

from __future__ import annotations

import argparse

from orbit.cli._output import Output
from orbit.cli._session import Session, shielded

__all__ = ["COMPACT_TYPES", "cmd_compact"]

COMPACT_TYPES = ("keyvalue", "counter", "documents")
"""The types whose state a commit holds (an eventlog's and a table's state is their history)."""


def cmd_compact(args: argparse.Namespace, out: Output) -> int:
    """``orbit compact NAME``: sign a commit at the heads held here and drop the history under it.

    The commit is this replica's own (``db.commit()``), trusted as a writer's (``trust="writer"``): the
    state is read back from its trees and checked against its roots before anything is dropped.
    """
    with Session(args, out) as s:
        db, entry = s.open(args.name, "compact", COMPACT_TYPES)
        with shielded():
            commit = db.commit()
            done = db.compact(commit, trust="writer")
    facts = {
        "name": entry.name,
        "address": db.address,
        "commit": str(commit.cid),
        "root": str(commit.root),
        "heads": [str(c) for c in commit.heads],
        "count": commit.count,
        "dropped": done.dropped,
        "kept": done.kept,
        "gives_up": list(done.gives_up),
    }
    if out.json:
        out.document(facts)
        return 0
    out.line(
        f"compacted {entry.name} at commit {commit.cid}: {done.dropped} entries dropped "
        f"(their CIDs and clock times kept), {done.kept} kept; state and count ({commit.count}) unchanged"
    )
    out.line("no longer possible here:")
    for item in done.gives_up:
        out.line(f"  - {item}")
    return 0
