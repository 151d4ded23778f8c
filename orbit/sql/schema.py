"""Table schemas from SQL: parse and check ``CREATE TABLE`` / ``CREATE INDEX``, refuse what merges break.

:func:`parse_schema` runs the statements in a private in-memory SQLite database, reads the result back
(``PRAGMA table_xinfo``, ``index_list``, ``foreign_key_list``) and returns a :class:`stores.table.Schema`
whose ``sql`` is the canonical text every replica runs (SQLite's own normalised form, made ``STRICT``).
That text goes into the database's manifest, so it is part of the address. Refused, with a
:class:`stores.errors.SchemaError` naming the constraint:

- a table without a ``PRIMARY KEY`` (rows are merged by key);
- ``UNIQUE`` (other than the key), unique indexes, ``FOREIGN KEY`` and ``CHECK`` constraints over more
  than one column: two replicas can each write a valid row and their merge break the rule, and no
  replica can repair it without discarding a signed write;
- ``AUTOINCREMENT`` (a counter cannot be shared), generated columns, a ``COLLATE`` on a key column,
  REAL or ANY key columns, column types other than ``INTEGER``/``INT``/``REAL``/``TEXT``/``BLOB``/
  ``ANY``, and any statement other than ``CREATE TABLE`` and ``CREATE INDEX``.

Single-column ``CHECK`` constraints, ``NOT NULL``, ``DEFAULT`` and ``COLLATE`` (on other columns) are
kept: a value either passes a single-column check or not, on every replica alike.

>>> schema = parse_schema("CREATE TABLE todos (id TEXT PRIMARY KEY, done INTEGER NOT NULL DEFAULT 0)")
>>> schema.sql
('CREATE TABLE todos (id TEXT PRIMARY KEY, done INTEGER NOT NULL DEFAULT 0) STRICT',)
>>> parse_schema("CREATE TABLE t (id TEXT PRIMARY KEY, email TEXT UNIQUE)")
Traceback (most recent call last):
...
stores.errors.SchemaError: table 't': UNIQUE constraint (on email) cannot hold when replicas write ...
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from typing import Final

from ipfs_log.codec import IPLDKind
from stores.errors import SchemaError
from stores.table import Column, Schema, TableSchema

__all__ = ["CheckEvaluator", "parse_schema", "quote", "schema_from_sql", "split_statements"]

_TYPES: Final = {
    "INT": "INTEGER",
    "INTEGER": "INTEGER",
    "REAL": "REAL",
    "TEXT": "TEXT",
    "BLOB": "BLOB",
    "ANY": "ANY",
}

_TOKEN: Final = re.compile(
    r"""
    (?P<space>\s+|--[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<blob>[xX]'[^']*')
  | (?P<string>'(?:[^']|'')*')
  | (?P<quoted>"(?:[^"]|"")*"|\[[^\]]*\]|`(?:[^`]|``)*`)
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<word>[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*)
  | (?P<other>.)
    """,
    re.S | re.X,
)


def quote(name: str) -> str:
    """Return ``name`` as a double-quoted SQL identifier.

    >>> quote('a"b')
    '"a""b"'
    """
    return '"' + name.replace('"', '""') + '"'


def _tokens(sql: str) -> list[tuple[str, str, int, int]]:
    """``(kind, text, start, end)`` of each token, comments and spaces left out."""
    out = []
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup or "other"
        if kind != "space":
            out.append((kind, m.group(), m.start(), m.end()))
    return out


def _identifier(kind: str, text: str) -> str | None:
    if kind == "word":
        return text
    if kind == "quoted":
        inner = text[1:-1]
        return inner.replace('""', '"') if text[0] == '"' else inner.replace("``", "`")
    return None


def split_statements(script: str) -> list[str]:
    r"""Split SQL text into statements on top-level semicolons (strings and comments respected).

    >>> split_statements("CREATE TABLE a (x); -- c;\nCREATE INDEX i ON a (x);")
    ['CREATE TABLE a (x)', 'CREATE INDEX i ON a (x)']
    """
    statements: list[str] = []
    first = last = -1
    for kind, text, begin, end in _tokens(script):
        if kind == "other" and text == ";":
            if first >= 0:
                statements.append(script[first:last])
            first = last = -1
        else:
            if first < 0:
                first = begin
            last = end
    if first >= 0:
        statements.append(script[first:last])
    return statements


def _checks(sql: str) -> list[tuple[str, set[str]]]:
    """Return ``(expression, identifiers used)`` of every CHECK constraint of a CREATE TABLE."""
    tokens = _tokens(sql)
    found = []
    depth = 0
    i = 0
    while i < len(tokens):
        kind, text, _, _ = tokens[i]
        if kind == "other" and text == "(":
            depth += 1
        elif kind == "other" and text == ")":
            depth -= 1
        elif depth == 1 and kind == "word" and text.upper() == "CHECK" and i + 1 < len(tokens):
            j, level = i + 2, 1
            names: set[str] = set()
            while j < len(tokens) and level:
                k, t, _, _ = tokens[j]
                if k == "other" and t in "()":
                    level += 1 if t == "(" else -1
                else:
                    name = _identifier(k, t)
                    is_call = j + 1 < len(tokens) and tokens[j + 1][1] == "("
                    if name is not None and not is_call:
                        names.add(name.lower())
                j += 1
            found.append((sql[tokens[i + 1][3] : tokens[j - 1][2]].strip(), names))
            i = j
            continue
        i += 1
    return found


def _first_words(statement: str, n: int) -> list[str]:
    return [t.upper() for k, t, _, _ in _tokens(statement)[:n] if k == "word"]


def _authorize(action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None) -> int:
    if action in (
        sqlite3.SQLITE_ATTACH,
        sqlite3.SQLITE_DETACH,
        sqlite3.SQLITE_PRAGMA,
    ):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def parse_schema(ddl: str | Iterable[str]) -> Schema:
    """Check ``CREATE TABLE`` and ``CREATE INDEX`` statements and return their schema.

    Args:
        ddl: one string of statements separated by ``;``, or the statements one by one.

    Raises:
        SchemaError: a statement is not valid SQL, is not a CREATE TABLE/INDEX, or declares what a
            merged table cannot keep (see the module's docstring); the message names the constraint.
    """
    statements = split_statements(ddl) if isinstance(ddl, str) else [s.strip() for s in ddl]
    if not statements:
        raise SchemaError("a table schema needs at least one CREATE TABLE statement")
    conn = sqlite3.connect(":memory:")
    try:
        conn.set_authorizer(_authorize)
        for statement in statements:
            words = _first_words(statement, 4)
            if words[:2] == ["CREATE", "UNIQUE"]:
                raise SchemaError(
                    f"UNIQUE index cannot hold when replicas write concurrently: {statement}",
                    constraint="UNIQUE",
                )
            if words[:2] not in (["CREATE", "TABLE"], ["CREATE", "INDEX"]):
                raise SchemaError(
                    f"only CREATE TABLE and CREATE INDEX statements are allowed, not: {statement}"
                )
            try:
                conn.execute(statement)
            except sqlite3.Error as e:
                raise SchemaError(f"{e}: {statement}") from e
        conn.set_authorizer(None)
        canonical = []
        for kind, _name, sql, strict, without_rowid in _objects(conn):
            if kind == "table" and not strict:
                sql = f"{sql}, STRICT" if without_rowid else f"{sql} STRICT"
            canonical.append(sql)
    finally:
        conn.close()
    return schema_from_sql(canonical)


def _objects(conn: sqlite3.Connection) -> list[tuple[str, str, str, bool, bool]]:
    """``(type, name, sql, strict, without rowid)`` of the user's tables, then of their indexes."""
    flags = {
        row[1]: (bool(row[5]), bool(row[4]))
        for row in conn.execute("PRAGMA main.table_list")
        if row[0] == "main"
    }
    rows = conn.execute(
        "SELECT type, name, tbl_name, sql FROM main.sqlite_schema ORDER BY type = 'index', rowid"
    ).fetchall()
    out = []
    for kind, name, _table, sql in rows:
        if kind == "table" and name == "sqlite_sequence":
            raise SchemaError(
                "AUTOINCREMENT cannot hold when replicas write concurrently", constraint="AUTOINCREMENT"
            )
        if kind not in ("table", "index"):
            raise SchemaError(f"only tables and indexes are allowed, not {kind} {name!r}")
        if sql is None:  # an automatic index (the key's)
            continue
        strict, without_rowid = flags.get(name, (False, False))
        out.append((kind, name, sql, strict, without_rowid))
    return out


def schema_from_sql(statements: Sequence[str]) -> Schema:
    """Build the schema of canonical statements (as :func:`parse_schema` returns them, or a manifest holds).

    Each statement must be exactly SQLite's normalised text of what it creates, tables ``STRICT``.

    Raises:
        SchemaError: the statements are not a valid canonical schema (see :func:`parse_schema`).
    """
    if not statements or any(type(s) is not str for s in statements):
        raise SchemaError("a table schema is a non-empty list of SQL statements")
    conn = sqlite3.connect(":memory:")
    try:
        conn.set_authorizer(_authorize)
        for statement in statements:
            if _first_words(statement, 2) not in (["CREATE", "TABLE"], ["CREATE", "INDEX"]):
                raise SchemaError(
                    f"only CREATE TABLE and CREATE INDEX statements are allowed, not: {statement}"
                )
            try:
                conn.execute(statement)
            except sqlite3.Error as e:
                hint = ""
                if "datatype" in str(e):
                    hint = " (tables are STRICT: declare each column INTEGER, REAL, TEXT, BLOB or ANY)"
                raise SchemaError(f"{e}{hint}: {statement}") from e
        conn.set_authorizer(None)
        objects = _objects(conn)
        if [o[2] for o in objects] != list(statements):
            raise SchemaError("schema statements are not in SQLite's canonical form, tables then indexes")
        tables = []
        for kind, name, sql, strict, _ in objects:
            if kind == "index":
                continue
            if not strict:
                raise SchemaError(f"table {name!r} is not STRICT", table=name)
            tables.append(_table(conn, name, sql))
    except sqlite3.Error as e:
        raise SchemaError(f"cannot read the schema back: {e}") from e
    finally:
        conn.close()
    return Schema(tuple(tables), tuple(statements))


def _table(conn: sqlite3.Connection, name: str, sql: str) -> TableSchema:
    where = f"table {name!r}"
    info = conn.execute(f"PRAGMA main.table_xinfo({quote(name)})").fetchall()
    if conn.execute(f"PRAGMA main.foreign_key_list({quote(name)})").fetchall():
        raise SchemaError(
            f"{where}: FOREIGN KEY cannot hold when replicas write concurrently (a row and the row it "
            "refers to can be deleted and inserted on two replicas at once)",
            table=name,
            constraint="FOREIGN KEY",
        )
    for _, index, unique, origin, _ in conn.execute(f"PRAGMA main.index_list({quote(name)})").fetchall():
        columns = [r[2] for r in conn.execute(f"PRAGMA main.index_xinfo({quote(index)})") if r[5]]
        if origin == "pk":
            collations = [r[4] for r in conn.execute(f"PRAGMA main.index_xinfo({quote(index)})") if r[5]]
            if any(c != "BINARY" for c in collations):
                raise SchemaError(f"{where}: a COLLATE on a key column is not supported", table=name)
        elif unique:
            raise SchemaError(
                f"{where}: UNIQUE constraint (on {', '.join(str(c) for c in columns)}) cannot hold when "
                "replicas write concurrently",
                table=name,
                constraint="UNIQUE",
            )
    names = [row[1] for row in info]
    lower = {n.lower(): n for n in names}
    checks: dict[str, list[str]] = {}
    for expression, used in _checks(sql):
        columns = sorted({lower[u] for u in used if u in lower})
        if len(columns) != 1:
            raise SchemaError(
                f"{where}: CHECK ({expression}) "
                + (
                    f"uses {len(columns)} columns ({', '.join(columns)}); a multi-column CHECK cannot hold "
                    "when replicas write concurrently"
                    if columns
                    else "uses no column"
                ),
                table=name,
                constraint="CHECK",
            )
        checks.setdefault(columns[0], []).append(expression)
    evaluator = CheckEvaluator({(name, c): e for c, e in checks.items()})
    columns_out = []
    keyed = sorted((row[5], row[1]) for row in info if row[5])
    for _cid, column, declared, notnull, _default, _pk, hidden in info:
        if hidden:
            raise SchemaError(f"{where}: generated column {column!r} is not supported", table=name)
        ctype = _TYPES.get(declared.upper())
        if ctype is None:
            raise SchemaError(
                f"{where}: column {column!r} has type {declared!r}; use INTEGER, REAL, TEXT, BLOB or ANY"
            )
        has_check = column in checks
        try:
            null_fails = has_check and not evaluator(name, column, None)
        except SchemaError as e:
            raise SchemaError(f"{where}: {e}", table=name, constraint="CHECK") from e
        columns_out.append(
            Column(
                column, ctype, required=bool(notnull) or null_fails, check=has_check, notnull=bool(notnull)
            )
        )
    evaluator.close()
    return TableSchema(name, tuple(columns_out), tuple(c for _, c in keyed))


class CheckEvaluator:
    """Evaluates single-column CHECK expressions on values, as SQLite would (NULL passes, 0 fails).

    Used as the table store's ``check`` callback. Thread-safe; owns a private in-memory database.

    Args:
        checks: the CHECK expressions of each ``(table, column)``.
    """

    def __init__(self, checks: dict[tuple[str, str], list[str]]) -> None:
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        self._sql = {
            key: "SELECT "
            + " OR ".join(f"(CAST(({e}) AS NUMERIC) = 0)" for e in expressions)
            + f" FROM (SELECT ? AS {quote(key[1])})"
            for key, expressions in checks.items()
        }

    @classmethod
    def for_schema(cls, schema: Schema) -> CheckEvaluator:
        """Return an evaluator of every single-column CHECK of ``schema``'s tables.

        Raises:
            SchemaError: the schema's SQL cannot be read.
        """
        checks: dict[tuple[str, str], list[str]] = {}
        conn = sqlite3.connect(":memory:")
        try:
            for sql in schema.sql:
                if _first_words(sql, 2) == ["CREATE", "TABLE"]:
                    conn.execute(sql)
            for table in schema.tables:
                (sql,) = conn.execute(
                    "SELECT sql FROM sqlite_schema WHERE name = ?", (table.name,)
                ).fetchone()
                names = {c.name.lower(): c.name for c in table.columns}
                for expression, used in _checks(sql):
                    column = names[next(iter(used & set(names)))]
                    checks.setdefault((table.name, column), []).append(expression)
        except (sqlite3.Error, StopIteration, KeyError, TypeError) as e:
            raise SchemaError(f"cannot read the schema's CHECK constraints: {e}") from e
        finally:
            conn.close()
        return cls(checks)

    def __call__(self, table: str, column: str, value: IPLDKind) -> bool:
        """Return whether ``value`` passes the CHECK constraints of ``table.column`` (True if none).

        Raises:
            SchemaError: the expression cannot be evaluated on its own.
        """
        sql = self._sql.get((table, column))
        if sql is None:
            return True
        with self._lock:
            try:
                row = self._conn.execute(sql, (value,)).fetchone()
            except sqlite3.Error as e:
                raise SchemaError(f"CHECK on {table}.{column} cannot be evaluated alone: {e}") from e
        return bool(row[0] != 1)

    def close(self) -> None:
        """Close the private database."""
        self._conn.close()
