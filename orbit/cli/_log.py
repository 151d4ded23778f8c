"""``orbit log``: the newest entries (writer, clock, CID) and the DAG, drawn like ``git log --graph``."""

from __future__ import annotations

import argparse

from ipfs_log.entry import Entry
from ipfs_log.identity import key_to_did
from orbit.cli._graph import graph_rows
from orbit.cli._output import Output, entry_summary, short_cid, short_did
from orbit.cli._session import ALL_TYPES, Session

__all__ = ["cmd_log"]


def cmd_log(args: argparse.Namespace, out: Output) -> int:
    """``orbit log NAME``: the newest entries, their writer, clock and CID, and the DAG's shape."""
    with Session(args, out) as s:
        db, entry = s.open(args.name, "log", ALL_TYPES)
        log = db.log
        entries: list[Entry] = list(log.iter(reverse=True, amount=args.limit))
        me = s.orbit.identity.public_key
        if out.json:
            for e in entries:
                out.document(
                    {
                        "cid": str(e.cid),
                        "time": e.time,
                        "writer": key_to_did(e.key),
                        "next": [str(c) for c in e.next],
                        "payload": e.payload,
                    }
                )
            return 0
        if not entries:
            out.line("(no entries)")
            out.note(f"{entry.name} has no entries yet")
            return 0
        full = args.full
        for graph, i in graph_rows((e.cid, e.next) for e in entries):
            if i is None:
                out.line(out.style(graph.rstrip(), "cyan"))
                continue
            e = entries[i]
            did = key_to_did(e.key)
            writer = short_did(did, full) + (" (you)" if e.key == me else "")
            graph_text = out.style(graph, "cyan")
            cid = out.style(short_cid(str(e.cid), full), "dim")
            out.line(f"{graph_text}  {cid}  {e.time:>4}  {writer:<16}  {entry_summary(e.payload)}".rstrip())
    return 0
