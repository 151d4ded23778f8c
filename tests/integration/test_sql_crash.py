"""Crash safety of the SQL view: SIGKILL during writes and during the view's catch-up, then check.

After every kill the database reopens with a view equal to the log's state (every acknowledged
statement present, the view's rows and provenance equal to the store's), whether the view lagged, was
mid-commit, or was mid-catch-up when the process died (the writer never reads provenance, so the
file's provenance lags its rows and is caught up from its own mark).
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orbit import OrbitDB
from tests.conftest import ALICE

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL, n INTEGER NOT NULL DEFAULT 0)"

WRITER = """
import sys
sys.path.insert(0, {root!r})
from orbit import OrbitDB
from tests.conftest import ALICE
orbit = OrbitDB({dir!r}, identity=ALICE)
db = orbit.open("crash", type="table", schema={schema!r})
i = db.sql("SELECT coalesce(max(id) + 1, 0) FROM t")[0][0]
print("ready", flush=True)
while True:
    db.execute("INSERT INTO t (id, v) VALUES (?, ?)", (i, str(i)))
    if i % 3 == 0:
        db.execute("UPDATE t SET n = n + 1 WHERE id >= ?", (i - 5,))
    print(i, flush=True)
    i += 1
"""

OPENER = """
import sys
sys.path.insert(0, {root!r})
from orbit import OrbitDB
from tests.conftest import ALICE
print("start", flush=True)
orbit = OrbitDB({dir!r}, identity=ALICE)
db = orbit.open("crash", type="table", schema={schema!r})
print("open", flush=True)
"""


def _spawn(code: str, directory: Path) -> subprocess.Popen[str]:
    source = code.format(root=str(ROOT), dir=str(directory), schema=SCHEMA)
    return subprocess.Popen([sys.executable, "-c", source], stdout=subprocess.PIPE, text=True)


def _read_until(proc: subprocess.Popen[str], word: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip() == word:
            return
        if not line and proc.poll() is not None:
            raise AssertionError(f"child exited ({proc.returncode}) before printing {word!r}")
    raise AssertionError(f"child did not print {word!r} within {timeout} s")


def _kill(proc: subprocess.Popen[str]) -> list[str]:
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    return out.split()


def _check(directory: Path, acked: int) -> None:
    with OrbitDB(directory, identity=ALICE) as orbit:
        db: object = orbit.open("crash", type="table", schema=SCHEMA)
        ids = [r[0] for r in db.sql("SELECT id FROM t ORDER BY id")]  # type: ignore[attr-defined]
        assert ids == list(range(len(ids)))
        assert len(ids) >= acked + 1
        in_view = sorted(db.sql("SELECT id, v, n FROM t"))  # type: ignore[attr-defined]
        in_store = sorted(tuple(r.values()) for _, r in db.rows("t"))  # type: ignore[attr-defined]
        assert in_view == in_store
        # provenance (written lazily, with its own coverage mark) is the store's, cell for cell
        expected = sorted(
            ("t", f"[{i}]", column, at["writer"], at["entry"].encode(), at["clock"])
            for i in ids
            for column, at in db.provenance("t", i).items()  # type: ignore[attr-defined]
        )
        assert sorted(db.sql("SELECT * FROM orbit_provenance")) == expected  # type: ignore[attr-defined]
        assert len(expected) == 3 * len(ids)


@pytest.mark.slow
def test_kill_during_writes_and_during_catch_up(tmp_path: Path) -> None:
    rng = random.Random(11)
    acked = -1
    for _ in range(3):
        writer = _spawn(WRITER, tmp_path)
        _read_until(writer, "ready")
        time.sleep(rng.uniform(0.3, 1.2))  # let it write for a while (not waiting for a condition)
        lines = [x for x in _kill(writer) if x.isdigit()]
        acked = max([acked, *(int(x) for x in lines)])
        # the view now lags the log (it commits in groups): kill the next opener while it catches up
        opener = _spawn(OPENER, tmp_path)
        _read_until(opener, "start")
        time.sleep(rng.uniform(0.0, 0.4))
        _kill(opener)
        _check(tmp_path, acked)
