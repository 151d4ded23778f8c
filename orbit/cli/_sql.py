"""``orbit sql``: SQL on a table database, from the command line or statement by statement from stdin."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any

from ipfs_log.cid import CID
from ipfs_log.errors import OrbitError
from orbit.address import is_address
from orbit.cli._output import CliError, Output, UsageError, from_json
from orbit.cli._session import Session
from orbit.sql import run_sql_command

__all__ = ["cmd_sql"]


def _sql_param(text: str) -> Any:
    """A ``--param``: JSON (a number, "text", null, or DAG-JSON bytes), or else the text itself."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, dict) and list(value) == ["/"]:
        value = from_json(value)
    if isinstance(value, dict | list | CID):
        raise UsageError(f"a --param is a number, text, null or bytes, not {text!r}")
    return value


def cmd_sql(args: argparse.Namespace, out: Output) -> int:
    """``orbit sql NAME "SELECT …"``: run SQL on a table database (``--write``: a signed write).

    Without SQL, statements come from standard input, each ended by ``;``: every one runs, an error is
    reported and the next one runs; the exit status is 1 if any failed.
    """
    params = [_sql_param(p) for p in args.param]
    if args.statement is None and params:
        raise UsageError("--param goes with a statement given on the command line")
    with Session(args, out) as s:
        target = args.name
        entry = s.registry.by_address(target) if is_address(target) else s.registry.get(target)
        if entry is not None:
            if entry.type != "table":
                raise CliError(
                    f"{entry.name!r} is a {entry.type} database; `orbit sql` works on table databases"
                )
            target = entry.address
        if args.statement is not None:
            text = run_sql_command(
                s.orbit, target, args.statement, params, as_json=out.json, write=args.write
            )
            out.line(text)
            return 0
        failed = False
        prompt = out.stderr if sys.stdin.isatty() and not out.json else None
        for statement in _statements(sys.stdin, prompt):
            try:
                text = run_sql_command(s.orbit, target, statement, (), as_json=out.json, write=args.write)
            except OrbitError as e:
                failed = True
                out.error(str(e))
                continue
            out.line(text)
        return 1 if failed else 0


def _statements(lines: Iterable[str], prompt: IO[str] | None) -> Iterator[str]:
    """The statements in ``lines``: text up to each ``;`` that ends a line (the rest, at the end).

    ``.quit`` or ``.exit`` on a line of its own ends the input; with a ``prompt`` stream, ``orbit> ``
    (or ``  ...> `` inside a statement) is written to it before each line.
    """
    pending: list[str] = []
    source = iter(lines)
    while True:
        if prompt is not None:
            prompt.write("  ...> " if pending else "orbit> ")
            prompt.flush()
        line = next(source, None)
        if line is None:
            break
        if not pending and line.strip() in (".quit", ".exit"):
            return
        pending.append(line)
        if line.rstrip().endswith(";"):
            statement = "".join(pending).strip()
            pending = []
            if statement.strip(";").strip():
                yield statement
    rest = "".join(pending).strip()
    if rest:
        yield rest
