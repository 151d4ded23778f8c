"""``sql``: a table database written and read with SQL, against plain sqlite3 (WAL) and raw Ed25519.

- ``sql_insert_per_s``: ``db.execute("INSERT …")``, one row per statement, each a signed, committed
  entry (LMDB, durable against a kill), on an on-disk OrbitDB;
- ``sql_insert_ratio_interleaved``: the same rate ÷ raw signs/s measured in chunks between the insert
  chunks (``sign_per_s_during_inserts``): on a loaded machine whose speed drifts during the run, a
  fairer ratio than one to the sign rate measured before it (``sql_insert_ratio``);
- ``sql_insert_with_provenance_per_s``: the same, counting also the time to bring ``orbit_provenance``
  up to date afterwards (it is written lazily: when a query names it, every 50,000 rows, or at close);
- ``sql_point_query_us``: median ``db.sql("SELECT … WHERE id = ?")`` by primary key over n rows (in
  chunks alternating with the same queries on the plain file, so that drift hits both alike);
- ``sql_apply_per_s``: rows applied (store + SQLite view) when a second replica joins entries of
  1,000-row transactions (verification included), until a query sees them;
- ``sql_apply_with_provenance_per_s``: the same, until ``orbit_provenance`` is up to date too;
- ``sql_join_single_per_s``: the same join for entries of one row each (verification-bound);
- ``sql_rebuild_s``: the view rebuilt from the store after its file was deleted (reopen);
- ``sql_replay_s``: the table store replayed from the log (what a rebuild without checkpoint adds);
- ``sqlite_insert_per_s`` / ``sqlite_point_query_us``: the same on a plain sqlite3 file in WAL mode
  (``synchronous=NORMAL``, one commit per insert).
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import nacl.bindings

from bench.common import MESSAGE, raw_sign_verify
from ipfs_log import Identity
from orbit import OrbitDB
from stores.table import Table

SCHEMA = "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL DEFAULT 0)"
INSERT = "INSERT INTO items (id, name, qty) VALUES (?, ?, ?)"
POINT = "SELECT id, name, qty FROM items WHERE id = ?"


def _plain_sqlite(directory: Path, n: int) -> tuple[float, sqlite3.Connection]:
    conn = sqlite3.connect(directory / "plain.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(SCHEMA + " STRICT")
    t = time.perf_counter()
    for i in range(n):
        conn.execute(INSERT, (i, f"item{i}", i % 100))
    insert_per_s = n / (time.perf_counter() - t)
    return insert_per_s, conn


def _point_queries(keys: list[int], plain: sqlite3.Connection, db: Any) -> tuple[float, float]:
    """Median point-query times (us) of the plain file and of orbit's view, measured in alternating
    chunks of 1,000 so that the machine's speed drifting during the run hits both alike."""
    mine: list[float] = []
    theirs: list[float] = []
    clock = time.perf_counter_ns
    sql = db.sql
    for start in range(0, len(keys), 1_000):
        chunk = keys[start : start + 1_000]
        for k in chunk:
            t = clock()
            plain.execute(POINT, (k,)).fetchall()
            theirs.append(clock() - t)
        for k in chunk:
            t = clock()
            sql(POINT, (k,))
            mine.append(clock() - t)
    return statistics.median(mine) / 1000, statistics.median(theirs) / 1000


def run(n: int) -> dict[str, Any]:
    alice, bob = Identity.from_seed(b"a" * 32), Identity.from_seed(b"b" * 32)
    writers = [alice.public_key, bob.public_key]
    rng = random.Random(7)
    keys = [rng.randrange(n) for _ in range(20_000)]
    sign_per_s, _ = raw_sign_verify()
    sign, (_, secret) = nacl.bindings.crypto_sign, nacl.bindings.crypto_sign_seed_keypair(b"s" * 32)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        sqlite_insert_per_s, plain = _plain_sqlite(d, n)

        a = OrbitDB(d / "a", identity=alice)
        db: Any = a.open("bench", type="table", schema=SCHEMA, write=writers)
        execute = db.execute
        insert_s = sign_s = 0.0
        clock = time.perf_counter
        for start in range(0, n, 1_000):  # raw signs interleaved, so that load drift hits both alike
            t = clock()
            for _ in range(250):
                sign(MESSAGE, secret)
            sign_s += clock() - t
            t = clock()
            for i in range(start, min(n, start + 1_000)):
                execute(INSERT, (i, f"item{i}", i % 100))
            insert_s += clock() - t
        insert_per_s = n / insert_s
        sign_during_per_s = 250 * ((n + 999) // 1_000) / sign_s
        assert len(db.log) == n
        db.sql(POINT, (0,))  # the first read commits the view
        t = time.perf_counter()
        assert db.sql("SELECT count(*) FROM orbit_rows") == [(n,)]  # names orbit_: provenance written
        insert_provenance_per_s = n / (insert_s + time.perf_counter() - t)
        point_us, sqlite_point_us = _point_queries(keys, plain, db)
        plain.close()
        assert db.sql(POINT, (5,)) == [(5, "item5", 5)]

        batched: Any = a.open("bench-batched", type="table", schema=SCHEMA, write=writers)
        chunk = 1_000
        for start in range(0, n, chunk):
            batched.executemany(
                INSERT, [(i, f"item{i}", i % 100) for i in range(start, min(n, start + chunk))]
            )

        b = OrbitDB(d / "b", identity=bob)
        replica: Any = b.open("bench-batched", type="table", schema=SCHEMA, write=writers)
        t = time.perf_counter()
        replica.sync_from(batched)
        replica.sql("SELECT 1")  # commit the view
        apply_per_s = n / (time.perf_counter() - t)
        replica.sql("SELECT count(*) FROM orbit_rows")  # and the provenance
        apply_provenance_per_s = n / (time.perf_counter() - t)
        assert replica.sql("SELECT count(*) FROM items") == [(n,)]

        singles = min(n, 20_000)
        single: Any = b.open("bench", type="table", schema=SCHEMA, write=writers)
        source: Any = OrbitDB(d / "a2", identity=alice)
        part: Any = source.open("bench", type="table", schema=SCHEMA, write=writers)
        for i in range(singles):
            part.execute(INSERT, (i, f"item{i}", i % 100))
        t = time.perf_counter()
        single.sync_from(part)
        single.sql("SELECT 1")
        join_single_per_s = singles / (time.perf_counter() - t)
        source.close()

        t = time.perf_counter()
        replayed = Table(db.log, schema=db.schema)
        replay_s = time.perf_counter() - t
        assert replayed.count("items") == n

        address, view = db.address, db.sql_view.path
        a.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(view) + suffix).unlink(missing_ok=True)
        a = OrbitDB(d / "a", identity=alice)
        t = time.perf_counter()
        reopened: Any = a.open(address)
        rebuild_s = time.perf_counter() - t
        assert reopened.sql("SELECT count(*) FROM items") == [(n,)]
        a.close()
        b.close()

    return {
        "n": n,
        "sign_per_s": round(sign_per_s),
        "sql_insert_per_s": round(insert_per_s),
        "sql_insert_ratio": round(insert_per_s / sign_per_s, 3),
        "sign_per_s_during_inserts": round(sign_during_per_s),
        "sql_insert_ratio_interleaved": round(insert_per_s / sign_during_per_s, 3),
        "sql_insert_with_provenance_per_s": round(insert_provenance_per_s),
        "sql_point_query_us": round(point_us, 2),
        "sqlite_insert_per_s": round(sqlite_insert_per_s),
        "sqlite_point_query_us": round(sqlite_point_us, 2),
        "sql_point_query_vs_sqlite": round(point_us / sqlite_point_us, 2),
        "sql_apply_per_s": round(apply_per_s),
        "sql_apply_with_provenance_per_s": round(apply_provenance_per_s),
        "sql_join_single_per_s": round(join_single_per_s),
        "sql_rebuild_s": round(rebuild_s, 2),
        "sql_replay_s": round(replay_s, 2),
    }
