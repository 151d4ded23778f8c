"""``orbit id``, ``orbit id export``, ``orbit id import``: the directory's identity and its secret key."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from orbit.cli._input import read_input
from orbit.cli._output import CliError, Output
from orbit.cli._session import Session, shielded
from orbit.facade import OrbitDB
from orbit.files import write_atomically
from orbit.keystore import export_identity, import_identity

__all__ = ["cmd_id", "cmd_id_export", "cmd_id_import"]


def cmd_id(args: argparse.Namespace, out: Output) -> int:
    """``orbit id``: show this directory's identity (created on first use)."""
    with Session(args, out, create=True) as s:
        identity = s.orbit.identity
        if out.json:
            out.document({"did": identity.did, "public_key": identity.public_key.hex()})
        else:
            out.line(identity.did)
    return 0


def _passphrase(path: str | None) -> bytes | None:
    if path is None:
        return None
    data = read_input(path, "passphrase file")
    return data.rstrip(b"\r\n")


def cmd_id_export(args: argparse.Namespace, out: Output) -> int:
    """``orbit id export [FILE]``: write the identity's keystore record (its secret key)."""
    with Session(args, out) as s:
        record = export_identity(s.orbit.identity, _passphrase(args.passphrase_file))
        did = s.orbit.identity.did
    if args.file in (None, "-"):
        out.stdout.write(record.decode())
        out.stdout.flush()
    else:
        try:
            write_atomically(args.file, record, mode=0o600)
        except OSError as e:
            raise CliError(f"cannot write {args.file}: {e.strerror or e}") from None
        if out.json:
            out.document({"did": did, "file": args.file, "encrypted": args.passphrase_file is not None})
        else:
            out.line(f"wrote the identity {did} to {args.file} (it holds the secret key: keep it safe)")
    return 0


def cmd_id_import(args: argparse.Namespace, out: Output) -> int:
    """``orbit id import FILE``: make a keystore record this directory's identity."""
    data = read_input(args.file, "identity file")
    identity = import_identity(data, _passphrase(args.passphrase_file), where=args.file)
    directory = Path(args.dir)
    passphrase = os.environ.get("ORBIT_PASSPHRASE")
    if (directory / "keystore").exists():
        with Session(args, out) as s:
            current = s.orbit.identity
            if current.public_key != identity.public_key:
                if not args.force:
                    raise CliError(
                        f"{directory} already has the identity {current.did}; --force replaces it "
                        f"(databases only it may write become read-only here)"
                    )
                with shielded():
                    s.orbit.keystore.save(identity, passphrase)
    else:
        with shielded(), OrbitDB(directory, identity=identity, passphrase=passphrase):
            pass
    if out.json:
        out.document({"did": identity.did, "public_key": identity.public_key.hex()})
    else:
        out.line(f"identity of {directory} is now {identity.did}")
    return 0
