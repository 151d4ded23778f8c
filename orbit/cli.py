"""The ``orbit`` command line: a thin shell over :class:`orbit.OrbitDB`.

``orbit demo`` runs the main job on the embedded default: two writers, each with its own identity and
directory, update the same keyvalue and counter databases concurrently, merge with ``sync_from``, and
print the converged state. Other subcommands read and write a database by name in ``--dir``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ipfs_log.codec import IPLDKind
from ipfs_log.errors import OrbitError
from orbit.db import OrbitDB

__all__ = ["main"]


def _value(text: str) -> IPLDKind:
    """Parse a value as JSON, falling back to the plain string."""
    try:
        value: IPLDKind = json.loads(text)
    except ValueError:
        return text
    return value


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=lambda v: v.hex() if isinstance(v, bytes) else str(v))


def _demo(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="orbit-demo-") as tmp:
        root = Path(args.dir) if args.dir else Path(tmp)
        with OrbitDB(root / "alice") as alice_db, OrbitDB(root / "bob") as bob_db:
            writers = [alice_db.identity.did, bob_db.identity.did]
            a_kv = alice_db.open("demo-settings", type="keyvalue", write=writers)
            b_kv = bob_db.open("demo-settings", type="keyvalue", write=writers)
            a_ct = alice_db.open("demo-visits", type="counter", write=writers)
            b_ct = bob_db.open("demo-visits", type="counter", write=writers)
            # Bob learns the manifests (same name, type and access give the same address).
            assert a_kv.address == b_kv.address
            assert a_ct.address == b_ct.address
            print(f"alice {alice_db.identity.did}\nbob   {bob_db.identity.did}")
            print(f"keyvalue {a_kv.address}\ncounter  {a_ct.address}")
            for i in range(args.rounds):  # concurrent writes: neither sees the other's yet
                a_kv.put("color", f"red-{i}")
                b_kv.put("color", f"blue-{i}")
                a_kv.put(f"alice-{i}", i)
                b_kv.put(f"bob-{i}", i)
                a_ct.inc(1)
                b_ct.inc(2)
            print(f"before sync: alice color={a_kv.get('color')!r}, bob color={b_kv.get('color')!r}")
            a_kv.sync_from(b_kv)
            b_kv.sync_from(a_kv)
            a_ct.sync_from(b_ct)
            b_ct.sync_from(a_ct)
            a_state, b_state = a_kv.all(), b_kv.all()
            print(f"alice keyvalue: {_show(a_state)}")
            print(f"bob   keyvalue: {_show(b_state)}")
            print(f"alice counter: {a_ct.value}  bob counter: {b_ct.value}")
            converged = (
                a_state == b_state
                and a_ct.value == b_ct.value
                and a_kv.log.head_cids == b_kv.log.head_cids
                and [e.cid for e in a_kv.log] == [e.cid for e in b_kv.log]
            )
            print("converged: " + ("yes, both replicas are equal" if converged else "NO"))
            return 0 if converged else 1


def _open(args: argparse.Namespace, orbit: OrbitDB, type: str) -> Any:
    return orbit.open(args.name, type=type)


def _put(args: argparse.Namespace) -> int:
    with OrbitDB(args.dir) as orbit:
        _open(args, orbit, "keyvalue").put(args.key, _value(args.value))
    return 0


def _get(args: argparse.Namespace) -> int:
    with OrbitDB(args.dir) as orbit:
        print(_show(_open(args, orbit, "keyvalue").get(args.key)))
    return 0


def _add(args: argparse.Namespace) -> int:
    with OrbitDB(args.dir) as orbit:
        print(_open(args, orbit, "eventlog").add(_value(args.value)))
    return 0


def _list(args: argparse.Namespace) -> int:
    with OrbitDB(args.dir) as orbit:
        db = _open(args, orbit, args.type)
        if args.type == "eventlog":
            for event in db.iter():
                print(_show(event.value))
        elif args.type == "counter":
            print(db.value)
        else:
            for key, value in sorted(db.all().items()):
                print(f"{key}\t{_show(value)}")
    return 0


def _address(args: argparse.Namespace) -> int:
    with OrbitDB(args.dir) as orbit:
        print(orbit.manifest(args.name, args.type).address)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orbit", description="An OrbitDB-style CRDT database, embedded.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="two writers update one database concurrently, merge and converge")
    demo.add_argument("--dir", help="keep the two replicas' directories here (default: a temp dir)")
    demo.add_argument("--rounds", type=int, default=3, help="concurrent writes per writer (default 3)")
    demo.set_defaults(func=_demo)

    def with_db(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--dir", required=True, help="the OrbitDB directory")
        p.add_argument("name", help="the database name")
        return p

    p = with_db("put", "put a key in a keyvalue database")
    p.add_argument("key", help="the key")
    p.add_argument("value", help="the value (JSON, or a plain string)")
    p.set_defaults(func=_put)
    p = with_db("get", "print a key of a keyvalue database as JSON")
    p.add_argument("key", help="the key")
    p.set_defaults(func=_get)
    p = with_db("add", "add an event to an eventlog database and print its CID")
    p.add_argument("value", help="the value (JSON, or a plain string)")
    p.set_defaults(func=_add)
    p = with_db("list", "print every event, key or the counter of a database")
    p.add_argument(
        "--type", default="keyvalue", choices=["eventlog", "keyvalue", "counter"], help="store type"
    )
    p.set_defaults(func=_list)
    p = with_db("address", "print the address of a database")
    p.add_argument("--type", default="eventlog", help="store type (default eventlog)")
    p.set_defaults(func=_address)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``orbit`` command line; return the exit status.

    An :class:`~ipfs_log.errors.OrbitError` is printed as one line on stderr and gives status 1.
    """
    args = _parser().parse_args(argv)
    try:
        status: int = args.func(args)
    except OrbitError as e:
        print(f"orbit: error: {e}", file=sys.stderr)
        return 1
    return status
