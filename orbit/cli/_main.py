"""The ``orbit`` argument parser and :func:`main`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

from ipfs_log.errors import OrbitError
from orbit.address import is_address
from orbit.cli._input import check_address, seconds
from orbit.cli._output import CliError, Output, UsageError
from orbit.cli._serve import add_serve

__all__ = ["build_parser", "main"]

Command = Callable[[argparse.Namespace, Output], int]


def _lazy(module: str, name: str) -> Command:
    """The command ``name`` of ``orbit.cli.<module>``, imported when it runs (start-up stays fast)."""

    def run(args: argparse.Namespace, out: Output) -> int:
        command: Command = getattr(importlib.import_module(f"orbit.cli.{module}"), name)
        return command(args, out)

    run.__name__ = run.__qualname__ = name
    return run


cmd_compact = _lazy("_compact", "cmd_compact")
cmd_create, cmd_drop, cmd_info, cmd_ls, cmd_open = (
    _lazy("_databases", n) for n in ("cmd_create", "cmd_drop", "cmd_info", "cmd_ls", "cmd_open")
)
demo = _lazy("_demo", "demo")
cmd_find, cmd_query = (_lazy("_documents", n) for n in ("cmd_find", "cmd_query"))
cmd_id, cmd_id_export, cmd_id_import = (
    _lazy("_identity", n) for n in ("cmd_id", "cmd_id_export", "cmd_id_import")
)
cmd_log = _lazy("_log", "cmd_log")
cmd_follow, cmd_status = (_lazy("_replication", n) for n in ("cmd_follow", "cmd_status"))
cmd_sql = _lazy("_sql", "cmd_sql")
cmd_export, cmd_import = (_lazy("_transfer", n) for n in ("cmd_export", "cmd_import"))
cmd_add, cmd_dec, cmd_del, cmd_get, cmd_inc, cmd_list, cmd_put, cmd_value = (
    _lazy("_values", n)
    for n in ("cmd_add", "cmd_dec", "cmd_del", "cmd_get", "cmd_inc", "cmd_list", "cmd_put", "cmd_value")
)

_TYPES = ("eventlog", "keyvalue", "counter", "documents", "table")


class _Parser(argparse.ArgumentParser):
    """argparse, with errors raised as one line instead of usage text and ``exit(2)``."""

    _intermixing = False
    _has_subcommands = False

    def add_subparsers(self, **kwargs: Any) -> Any:
        """argparse's, noting that this parser is not a leaf (it dispatches to subcommands)."""
        self._has_subcommands = True
        return super().add_subparsers(**kwargs)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        # A subcommand takes options between its positionals (`orbit put db k -s text`): plain argparse
        # stops matching positionals at the first option; the intermixed parse does not.
        if not self._has_subcommands and not self._intermixing:
            self._intermixing = True
            try:
                return self.parse_known_intermixed_args(args, namespace)
            finally:
                self._intermixing = False
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


class _Version(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> NoReturn:
        print(f"orbit {_version()}")
        parser.exit()


def _global_options(parser: argparse.ArgumentParser) -> None:
    # Accepted before or after the subcommand: SUPPRESS keeps a later parser from overwriting them.
    parser.add_argument(
        "--dir",
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="the orbit directory: identity, blocks, database names (default: $ORBIT_DIR or ~/.orbit)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print JSON for scripts: one document, or one object per line for lists and streams",
    )
    parser.add_argument(
        "--ipfs",
        default=argparse.SUPPRESS,
        metavar="URL",
        help="the IPFS node's HTTP RPC URL, for replication (default: $IPFS_API)",
    )


class _Skipped:
    """Stands for the parser of a subcommand that is not run: takes its arguments and drops them."""

    def __getattr__(self, name: str) -> Callable[..., _Skipped]:
        return lambda *args, **kwargs: self


_GLOBAL_WITH_VALUE = ("--dir", "--ipfs")


def chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` runs (its first positional, global options skipped), or None for none."""
    tokens = iter(argv)
    for token in tokens:
        if token == "--":
            return next(tokens, None)
        if len(token) > 2 and "=" not in token and any(o.startswith(token) for o in _GLOBAL_WITH_VALUE):
            next(tokens, None)  # --dir DIR, or an abbreviation argparse accepts (--di DIR)
        elif not token.startswith("-"):
            return token
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Return the ``orbit`` argument parser (every subcommand has help text).

    With ``command``, only that subcommand's own arguments are built (the others are listed, with their
    help, but parse nothing): a command line starts faster when argparse builds one parser, not thirty.
    """
    common = _Parser(add_help=False)
    _global_options(common)
    parser = _Parser(
        prog="orbit",
        description="orbit: an OrbitDB-style CRDT database. Databases live in a directory, by name.",
        epilog="Values are JSON ('\"text\"', 3, '{\"a\": 1}') or - for standard input. "
        "Exit status, for every command: 0 success; 1 a failure (an error, a missing key or database); "
        "2 a usage error (a malformed option, value, name, address or condition: nothing was done); "
        "130 interrupted (Ctrl-C).",
        parents=[common],
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser, help="what to do")
    sub.required = True

    def add(name: str, help: str, func: Any, *, description: str | None = None) -> argparse.ArgumentParser:
        if command is not None and name != command:
            sub.add_parser(name, help=help, add_help=False)
            return _Skipped()  # type: ignore[return-value]
        p: argparse.ArgumentParser = sub.add_parser(
            name, help=help, description=description or help, parents=[common]
        )
        p.set_defaults(func=func)
        return p

    def create_type(p: argparse.ArgumentParser, types: Sequence[str]) -> None:
        p.add_argument(
            "--type",
            choices=types,
            help="create the database with this type if the name is new (else it must be of this type)",
        )

    def value_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("-s", "--string", action="store_true", help="take the value as plain text, not JSON")

    def list_options(p: argparse.ArgumentParser, default: int | None) -> None:
        p.add_argument(
            "-n",
            "--limit",
            type=int,
            default=default,
            metavar="N",
            help=f"show at most N (default {default or 'all'})",
        )
        p.add_argument("--full", action="store_true", help="show whole CIDs and writer keys")

    demo_help = "two writers update one database concurrently, merge and converge"
    p = sub.add_parser(
        "demo",
        help=demo_help,
        add_help=command in (None, "demo"),
        description="Two writers, alice and bob, each with a directory and an identity, update the same "
        "keyvalue and counter databases concurrently, merge, and print the converged state.",
    )
    p.set_defaults(func=demo)
    p.add_argument(
        "--dir",
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="keep the two directories as DIR/alice and DIR/bob (`orbit --dir DIR/alice ls` then lists "
        "the demo's databases); default: temporary directories, deleted at the end ($ORBIT_DIR is not used)",
    )
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON document")
    p.add_argument("--rounds", type=int, default=3, help="concurrent writes per writer (default 3)")

    p = add("id", "show this directory's identity (did:key), created on first use", cmd_id)
    ids = p.add_subparsers(
        dest="id_command", metavar="ACTION", parser_class=_Parser, help="export or import the identity"
    )
    q = ids.add_parser(
        "export", help="write the identity's secret key record to FILE (or stdout)", parents=[common]
    )
    q.add_argument("file", nargs="?", metavar="FILE", help="where to write (default: standard output)")
    q.add_argument("--passphrase-file", metavar="PATH", help="seal the record with the passphrase in PATH")
    q.set_defaults(func=cmd_id_export)
    q = ids.add_parser("import", help="make the identity in FILE this directory's identity", parents=[common])
    q.add_argument("file", metavar="FILE", help="a record from `orbit id export` (- for stdin)")
    q.add_argument("--passphrase-file", metavar="PATH", help="the passphrase that opens a sealed record")
    q.add_argument("--force", action="store_true", help="replace the directory's existing identity")
    q.set_defaults(func=cmd_id_import)

    p = add("create", "create a database and remember its name", cmd_create)
    p.add_argument("name", metavar="NAME", help="the database's name")
    p.add_argument("--type", required=True, choices=_TYPES, help="the store type")
    p.add_argument(
        "--write",
        action="append",
        default=[],
        metavar="KEY",
        help="also let this writer write (a did:key; repeat the option, or separate keys with commas), "
        "or '*' for anyone; you always can",
    )
    p.add_argument(
        "--index-by", default="_id", metavar="FIELD", help="documents: the key field (default _id)"
    )
    p.add_argument(
        "--index", action="append", default=[], metavar="FIELD", help="documents: index FIELD for find"
    )
    p.add_argument(
        "--schema",
        metavar="SQL",
        help="table: the tables, as CREATE TABLE (and CREATE INDEX) statements; fixed in the address",
    )

    p = add("open", "remember a database by its address (from this directory, or an IPFS node)", cmd_open)
    p.add_argument("address", metavar="ADDRESS", help="an /orbitdb/<cid> address")
    p.add_argument("--as", dest="as_name", metavar="NAME", help="the name to use (default: the manifest's)")
    p.add_argument(
        "--index-by", default="_id", metavar="FIELD", help="documents: the key field (default _id)"
    )
    p.add_argument(
        "--wait",
        type=seconds,
        default=10.0,
        metavar="SECONDS",
        help="with a node: how long to wait for peers when the node records nothing of it (default 10; "
        "0 opens it empty)",
    )
    p.add_argument(
        "--trust",
        choices=("replay", "writer"),
        default="replay",
        help="replay (default): fetch and verify every entry; writer: open from the newest commit the "
        "node keeps, trusted as signed by a writer (only the state is fetched and checked, then the "
        "entries after it)",
    )

    add("ls", "list the databases of the directory", cmd_ls)

    p = add("info", "address, type, writers, heads, entries and size of a database", cmd_info)
    p.add_argument("target", metavar="NAME|ADDRESS", help="a database name or address")

    p = add("drop", "delete a database's log and forget its name", cmd_drop)
    p.add_argument("target", metavar="NAME|ADDRESS", help="a database name or address")

    p = add(
        "compact",
        "drop the history under a new commit of this replica's (state and count unchanged)",
        cmd_compact,
        description="Signs a commit at the heads held here (keyvalue, counter, documents), trusts it as a "
        "writer's (trust='writer': the state is read back from its trees and checked against its roots), "
        "and drops the entries under its heads, keeping their CIDs and clock times so concurrent entries "
        "still merge. Prints what was dropped and what the replica can no longer prove or serve.",
    )
    p.add_argument("name", metavar="NAME", help="a keyvalue, counter or documents database")

    p = add("add", "eventlog: append an event (prints its CID)", cmd_add)
    p.add_argument("name", metavar="NAME", help="an eventlog database")
    p.add_argument("value", metavar="VALUE", help="the event (JSON, or - for stdin)")
    value_options(p)
    create_type(p, ["eventlog"])

    p = add(
        "put",
        "keyvalue: put KEY VALUE; documents: put DOC (prints the entry's CID)",
        cmd_put,
        description="keyvalue: `orbit put NAME KEY VALUE`; documents: `orbit put NAME DOC`, where DOC is a "
        "JSON object holding its key field (a JSON array puts many documents in one entry).",
    )
    p.add_argument("name", metavar="NAME", help="a keyvalue or documents database")
    p.add_argument(
        "key_or_doc", metavar="KEY|DOC", help="keyvalue: the key; documents: the document (JSON, or -)"
    )
    p.add_argument("value", nargs="?", metavar="VALUE", help="keyvalue: the value (JSON, or - for stdin)")
    value_options(p)
    create_type(p, ["keyvalue", "documents"])

    p = add("get", "print a key's value, a document, or an event (by CID) as JSON", cmd_get)
    p.add_argument("name", metavar="NAME", help="a keyvalue, documents or eventlog database")
    p.add_argument("key", metavar="KEY", help="the key (eventlog: a CID, or its last 6+ characters)")
    p.add_argument("--default", metavar="JSON", help="print this instead of failing when the key is missing")

    p = add("del", "delete a key (keyvalue) or a document (documents)", cmd_del)
    p.add_argument("name", metavar="NAME", help="a keyvalue or documents database")
    p.add_argument("key", metavar="KEY", help="the key")

    p = add("list", "list events, keys, documents, or a counter's writers", cmd_list)
    p.add_argument("name", metavar="NAME", help="a database")
    p.add_argument("-r", "--reverse", action="store_true", help="newest (or last key) first")
    list_options(p, None)

    for name, verb, func in (("inc", "add to", cmd_inc), ("dec", "subtract from", cmd_dec)):
        p = add(name, f"counter: {verb} the counter (prints the new value)", func)
        p.add_argument("name", metavar="NAME", help="a counter database")
        p.add_argument("amount", nargs="?", type=int, default=1, metavar="N", help="how much (default 1)")
        create_type(p, ["counter"])

    p = add("value", "counter: print the counter's value", cmd_value)
    p.add_argument("name", metavar="NAME", help="a counter database")

    p = add(
        "find",
        "documents: the documents whose fields equal values (FIELD=VALUE…)",
        cmd_find,
        description="Documents whose fields equal the given values, by index when one of the fields is "
        "indexed (`orbit create --index FIELD`), else by a scan. VALUE is JSON, or else plain text.",
    )
    p.add_argument("name", metavar="NAME", help="a documents database")
    p.add_argument("conditions", nargs="+", metavar="FIELD=VALUE", help="e.g. city=London age=36")

    p = add(
        "query",
        "documents: the documents matching conditions (FIELD OP VALUE, OP one of = != < <= > >= ~)",
        cmd_query,
        description="A scan of every document. `~` is 'contains' (a substring, or a list member). VALUE is "
        "JSON, or else plain text; quote conditions for the shell: 'age>=30'.",
    )
    p.add_argument("name", metavar="NAME", help="a documents database")
    p.add_argument("conditions", nargs="+", metavar="COND", help="e.g. 'age>=30' 'city!=Paris' 'tags~db'")
    p.add_argument("-n", "--limit", type=int, metavar="N", help="show at most N")

    p = add(
        "sql",
        "table: run a SQL query (read-only), or with --write a statement that appends one entry",
        cmd_sql,
        description="Runs SQL on a table database (orbit create NAME --type table --schema 'CREATE TABLE "
        "…'), found by name in the directory or by address. Queries go through a read-only connection; "
        "--write runs INSERT/UPDATE/DELETE through the log, as one signed entry. Rows print as a table "
        "(NULL for null, blobs as x'…'), or with --json as one JSON array of objects. Without SQL, "
        "statements are read from standard input, each ended by ';' (a prompt on a terminal; .quit ends).",
    )
    p.add_argument("name", metavar="NAME", help="a table database (name or address)")
    p.add_argument(
        "statement",
        metavar="SQL",
        nargs="?",
        help="the statement, with ? placeholders for --param values (none: read statements from stdin)",
    )
    p.add_argument(
        "-p",
        "--param",
        action="extend",
        nargs="+",
        default=[],
        metavar="VALUE",
        help="values for the ? placeholders, in order, after the SQL: `-p 3 bob null` or `-p 3 -p bob` "
        "(JSON: 3, '\"text\"', null; anything else is text)",
    )
    p.add_argument(
        "--write",
        action="store_true",
        help="run a write (INSERT, UPDATE, DELETE) as one signed entry; prints rows changed and the CID",
    )

    p = add("log", "the newest entries: writer, clock, CID, and the DAG drawn like git log --graph", cmd_log)
    p.add_argument("name", metavar="NAME", help="a database")
    list_options(p, 20)

    p = add("export", "write a database (manifest and entries) to a CAR file", cmd_export)
    p.add_argument("name", metavar="NAME", help="a database")
    p.add_argument("file", metavar="FILE.car", help="the CAR file to write")

    p = add("import", "verify and merge a CAR file's entries (creating the database if new)", cmd_import)
    p.add_argument("file", metavar="FILE.car", help="a CAR file from `orbit export` (- for stdin)")
    p.add_argument("--as", dest="as_name", metavar="NAME", help="the name to use (default: the manifest's)")
    p.add_argument(
        "--index-by", default="_id", metavar="FIELD", help="documents: the key field (default _id)"
    )

    p = add("follow", "replicate a database and print updates as they come (needs an IPFS node)", cmd_follow)
    p.add_argument("name", metavar="NAME", help="a database")

    p = add("status", "replication state of a database (needs an IPFS node)", cmd_status)
    p.add_argument("name", metavar="NAME", help="a database")

    add_serve(add, lambda argv, stdout, stderr: main(argv, stdout=stdout, stderr=stderr))

    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("orbit-crdt")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def _defaults(args: argparse.Namespace) -> None:
    for field in ("name", "target", "address"):  # a malformed address is a usage error, as a bad name is
        value = getattr(args, field, None)
        if isinstance(value, str) and is_address(value):
            check_address(value)
    args.demo_dir = getattr(args, "dir", None)  # demo: keep the replicas only in a directory asked for
    if not hasattr(args, "dir"):
        args.dir = os.environ.get("ORBIT_DIR") or str(Path.home() / ".orbit")
    args.json = getattr(args, "json", False)
    if not hasattr(args, "ipfs"):
        args.ipfs = os.environ.get("IPFS_API") or None


def main(
    argv: Sequence[str] | None = None, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None
) -> int:
    """Run the ``orbit`` command line and return its exit status.

    Errors print as one line on stderr (``orbit: error: …``): status 1 for a failed command or a
    missing key, 2 for bad arguments; Ctrl-C gives 130 and leaves the directory consistent.
    """
    err = stderr or sys.stderr
    out: Output | None = None
    try:
        words = list(sys.argv[1:] if argv is None else argv)
        args = build_parser(chosen_command(words)).parse_args(words)
        _defaults(args)
        out = Output(args.json, stdout, stderr)
        from orbit.cli._session import route  # through `orbit serve`, if it serves the directory

        routed = route(args, words, out)
        if routed is not None:
            return routed
        status: int = args.func(args, out)
        return status
    except SystemExit as e:  # --help, --version
        return e.code if isinstance(e.code, int) else 0
    except CliError as e:
        _error(err, str(e))
        return e.status
    except OrbitError as e:
        _error(err, str(e))
        return 1
    except KeyboardInterrupt:
        _error(err, "interrupted", prefix="orbit: ")
        return 130
    except BrokenPipeError:  # e.g. `orbit list big | head`: the reader left; exit quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _error(stream: IO[str], message: str, prefix: str = "orbit: error: ") -> None:
    text = " ".join(message.split())
    isatty = getattr(stream, "isatty", None)
    if isatty and isatty() and not os.environ.get("NO_COLOR"):
        text = f"\x1b[31m{text}\x1b[0m"
    print(prefix + text, file=stream)
