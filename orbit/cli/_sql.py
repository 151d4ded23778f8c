"""``orbit sql``: SQL on a table database, from the command line or statement by statement from stdin."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any, Final

from ipfs_log.cid import CID
from ipfs_log.errors import OrbitError
from orbit.address import is_address
from orbit.cli._output import CliError, Output, UsageError, from_json
from orbit.cli._session import Session
from orbit.sql import ProgrammingError, TableDatabase, run_sql_command
from orbit.sql.errors import first_keyword

_WRITES: Final = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "WITH"})
DOT_COMMANDS: Final = {
    ".tables": "list the tables",
    ".schema": "print the schema (CREATE statements), or one table's: .schema TABLE",
    ".help": "list these commands",
    ".quit": "end (also .exit, or end of input)",
}

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
        raise UsageError(
            "--param goes with a statement given on the command line, before the values: "
            "orbit sql NAME 'SQL with ?' -p VALUE..."
        )
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
            if args.statement.strip().startswith("."):
                _dot(s, target, args.statement, out)
                return 0
            out.line(_run(s, target, args.statement, params, out, args.write, args.name))
            return 0
        failed = False
        prompt = out.stderr if sys.stdin.isatty() and not out.json else None
        for statement in _statements(sys.stdin, prompt):
            try:
                if statement.startswith("."):
                    _dot(s, target, statement, out)
                else:
                    out.line(_run(s, target, statement, (), out, args.write, args.name))
            except (OrbitError, CliError) as e:
                failed = True
                out.error(str(e))
        return 1 if failed else 0


def _run(
    s: Session, target: str, statement: str, params: Sequence[Any], out: Output, write: bool, name: str
) -> str:
    """One statement's printed result; a write without ``--write`` is refused with the command to run."""
    try:
        return run_sql_command(s.orbit, target, statement, params, as_json=out.json, write=write)
    except ProgrammingError as e:
        if not write and first_keyword(statement) in _WRITES and "a query only reads" in str(e):
            again = f"orbit sql {name} --write {_quoted(statement)}"
            raise CliError(f"a query only reads; run the write with --write: {again}") from e
        raise


def _quoted(statement: str) -> str:
    text = " ".join(statement.split())
    if len(text) > 80:
        text = text[:77] + "..."
    return "'" + text.replace("'", "'\\''") + "'"


def _dot(s: Session, target: str, line: str, out: Output) -> None:
    """Run a dot command (``.tables``, ``.schema [TABLE]``, ``.help``) of ``orbit sql``.

    Raises:
        CliError: an unknown command, or an unknown table.
    """
    command, *rest = line.split()
    if command in (".quit", ".exit"):
        return
    if command == ".help":
        for name, what in DOT_COMMANDS.items():
            out.line(f"{name.ljust(8)}  {what}")
        return
    if command not in DOT_COMMANDS:
        raise CliError(f"unknown command {command!r}: {', '.join(DOT_COMMANDS)}")
    db = s.orbit.open(target)
    if not isinstance(db, TableDatabase):
        raise CliError(f"{target} is a {db.store_type} database, not a table database")
    tables = [t.name for t in db.schema.tables]
    if command == ".tables":
        if out.json:
            out.document(tables)
        else:
            out.line("\n".join(tables) if tables else "(none)")
        return
    statements = schema_statements(db, rest[0] if rest else None)
    if out.json:
        out.document(statements)
    else:
        out.line("\n".join(s + ";" for s in statements))


def schema_statements(db: TableDatabase, table: str | None = None) -> list[str]:
    """The schema's CREATE statements (of one table and its indexes, if ``table``).

    Raises:
        CliError: there is no such table.
    """
    statements = list(db.schema.sql)
    if table is None:
        return statements
    names = {t.name.lower() for t in db.schema.tables}
    if table.lower() not in names:
        raise CliError(f"no table {table!r}: the tables are {', '.join(t.name for t in db.schema.tables)}")
    wanted = re.compile(r"\b(TABLE|ON)\s+[\"`\[]?" + re.escape(table) + r"\b", re.IGNORECASE)
    return [sql for sql in statements if wanted.search(sql)]


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
        if not pending and line.strip().startswith("."):  # a dot command: one line, no ';'
            yield line.strip()
            continue
        pending.append(line)
        if line.rstrip().endswith(";"):
            statement = "".join(pending).strip()
            pending = []
            if statement.strip(";").strip():
                yield statement
    rest = "".join(pending).strip()
    if rest:
        yield rest
