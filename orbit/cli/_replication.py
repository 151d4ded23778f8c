"""``orbit follow`` and ``orbit status``: a database replicated through an IPFS node while they run.

The library does the replicating: the session reopens the directory as ``OrbitDB(directory, ipfs=…)``
(:meth:`Session.connect`), which links each database it opens to the node and starts its replicator.
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

from ipfs_log.identity import key_to_did
from orbit.cli._output import Output, entry_summary, short_cid, short_did
from orbit.cli._session import ALL_TYPES, TIMEOUT, Session
from orbit.errors import ReplicationTimeoutError
from stores.base import Update

__all__ = ["cmd_follow", "cmd_status"]


def cmd_follow(args: argparse.Namespace, out: Output) -> int:
    """``orbit follow NAME``: replicate and print updates as they come, until Ctrl-C."""
    with Session(args, out) as s:
        db, entry = s.open(args.name, "follow", ALL_TYPES, node=True)
        count = db.entry_count()
        entries = f"{count} entr{'y' if count == 1 else 'ies'}"
        started = f"following {entry.name} ({db.address}) through {s.node}: {entries} so far; "
        if out.json:  # stdout holds one object per entry
            print(started + "Ctrl-C stops", file=out.stderr, flush=True)
        else:
            out.line(started + "new ones print as they come; Ctrl-C stops")
            out.stdout.flush()

        def show(update: object) -> None:
            if not isinstance(update, Update):
                return
            for e in update.entries:
                if out.json:
                    out.document(
                        {"cid": str(e.cid), "time": e.time, "writer": key_to_did(e.key), "payload": e.payload}
                    )
                else:
                    out.line(
                        f"{short_cid(str(e.cid))}  {e.time:>4}  {short_did(key_to_did(e.key))}  "
                        f"{entry_summary(e.payload)}"
                    )
            out.stdout.flush()

        db.subscribe(show)
        stop = threading.Event()
        while True:  # until Ctrl-C (KeyboardInterrupt)
            stop.wait(0.5)


def cmd_status(args: argparse.Namespace, out: Output) -> int:
    """``orbit status NAME``: replication state through the IPFS node."""
    with Session(args, out) as s:
        db, _ = s.open(args.name, "status", ALL_TYPES, node=True)
        try:
            db.wait_synced(min(TIMEOUT, 5.0))
            synced = True
        except ReplicationTimeoutError:
            synced = False
        replication = db.replication_status()
        state: dict[str, Any] = {
            "address": db.address,
            "node": s.node,
            "heads": [str(h) for h in db.heads()],
            "entries": db.entry_count(),
            "peers": {p: [str(h) for h in heads] for p, heads in replication.peers.items()},
            "synced": synced,
            "pending": replication.pending,
            "missing": replication.missing,
            "writer": s.orbit.identity.did,
            **{f"count_{k}": v for k, v in replication.counters.items()},
        }
    if out.json:
        out.document(state)
    else:
        out.fields([(k, human(v)) for k, v in sorted(state.items())])
    return 0


def human(value: Any) -> str:
    """A status value for people: text as it is, lists joined, maps as ``key: value``, never JSON quotes.

    >>> human("x"), human(["a", "b"]), human({}), human({"p": ["h"]}), human(True), human(None)
    ('x', 'a, b', '(none)', 'p: h', 'yes', '-')
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(human(v) for v in value) or "(none)"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {human(v)}" for k, v in value.items()) or "(none)"
    return str(value)
