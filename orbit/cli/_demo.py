"""``orbit demo``: two writers update one database concurrently, merge, and converge."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from orbit.cli._output import Output, to_json
from orbit.facade import OrbitDB

__all__ = ["demo"]


def demo(args: argparse.Namespace, out: Output) -> int:
    """Run the demo on the embedded store: alice and bob, each with a directory and an identity."""
    with tempfile.TemporaryDirectory(prefix="orbit-demo-") as tmp:
        root = Path(args.demo_dir) if args.demo_dir else Path(tmp)
        with OrbitDB(root / "alice") as alice_db, OrbitDB(root / "bob") as bob_db:
            writers = [alice_db.identity.did, bob_db.identity.did]
            a_kv = alice_db.open("demo-settings", type="keyvalue", write=writers)
            b_kv = bob_db.open("demo-settings", type="keyvalue", write=writers)
            a_ct = alice_db.open("demo-visits", type="counter", write=writers)
            b_ct = bob_db.open("demo-visits", type="counter", write=writers)
            # Same name, type and access give the same address: bob opens alice's databases.
            assert a_kv.address == b_kv.address
            assert a_ct.address == b_ct.address
            if not out.json:
                out.line(f"alice {alice_db.identity.did}\nbob   {bob_db.identity.did}")
                out.line(f"keyvalue {a_kv.address}\ncounter  {a_ct.address}")
                out.stdout.flush()
            for i in range(args.rounds):  # concurrent writes: neither sees the other's yet
                a_kv.put("color", f"red-{i}")
                b_kv.put("color", f"blue-{i}")
                a_kv.put(f"alice-{i}", i)
                b_kv.put(f"bob-{i}", i)
                a_ct.inc(1)
                b_ct.inc(2)
            before = {"alice": a_kv.get("color"), "bob": b_kv.get("color")}
            if not out.json:
                out.line(
                    f"before sync: alice color={_show(before['alice'])}, bob color={_show(before['bob'])}"
                )
            a_kv.sync_from(b_kv)
            b_kv.sync_from(a_kv)
            a_ct.sync_from(b_ct)
            b_ct.sync_from(a_ct)
            a_state, b_state = a_kv.all(), b_kv.all()
            converged = (
                a_state == b_state
                and a_ct.value == b_ct.value
                and a_kv.log.head_cids == b_kv.log.head_cids
                and [e.cid for e in a_kv.log] == [e.cid for e in b_kv.log]
            )
            if out.json:
                out.document(
                    {
                        "alice": alice_db.identity.did,
                        "bob": bob_db.identity.did,
                        "keyvalue": a_kv.address,
                        "counter": a_ct.address,
                        "before": before,
                        "after": {"alice": a_state, "bob": b_state},
                        "counter_value": {"alice": a_ct.value, "bob": b_ct.value},
                        "converged": converged,
                    }
                )
            else:
                out.line(f"alice keyvalue: {_show(a_state)}")
                out.line(f"bob   keyvalue: {_show(b_state)}")
                out.line(f"alice counter: {a_ct.value}  bob counter: {b_ct.value}")
                out.line("converged: " + ("yes, both replicas are equal" if converged else "NO"))
            return 0 if converged else 1


def _show(value: object) -> str:
    import json

    return json.dumps(to_json(value), sort_keys=True)
