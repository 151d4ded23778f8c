"""Crash safety of the embedded default: SIGKILL a writer at random moments, then check every ack."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ipfs_log import Log
from orbit import OrbitDB
from tests.conftest import ALICE

ROOT = Path(__file__).resolve().parents[2]

WRITER = """
import sys
sys.path.insert(0, {root!r})
from orbit import OrbitDB
from tests.conftest import ALICE
orbit = OrbitDB({dir!r}, identity=ALICE)
events = orbit.open("crash", type="eventlog")
kv = orbit.open("crash-kv", type="keyvalue")
i = len(events)
print("ready", flush=True)
while True:
    if i % 5 == 4:
        with events.batch() as batch:
            batch.add(i)
    else:
        events.add(i)
    kv.put("last", i)
    print(i, flush=True)
    i += 1
"""


def _check(directory: Path, acked: int) -> int:
    """Open after a kill: every acknowledged write is there, in order, and the log verifies."""
    with OrbitDB(directory, identity=ALICE) as orbit:
        events = orbit.open("crash", type="eventlog")
        values = [e.value for e in events.iter()]
        assert values == list(range(len(values))), "events are not the contiguous sequence written"
        assert len(values) >= acked + 1 if acked >= 0 else True
        kv = orbit.open("crash-kv", type="keyvalue")
        if acked >= 0:
            last = kv.get("last")
            assert isinstance(last, int)
            assert last >= acked
        # Nothing is corrupt: a full verified load (hashes, signatures, clocks) gives the same log.
        verified = Log.load(ALICE, orbit.blocks, events.log.head_cids, log_id=events.address)
        assert [e.cid for e in verified] == [e.cid for e in events.log]
        return len(values)


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_write(tmp_path: Path) -> None:
    rng = random.Random(4)
    count = 0
    for _ in range(20):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER.format(root=str(ROOT), dir=str(tmp_path))],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        acked = [int(line) for line in out.split()]
        last = acked[-1] if acked else count - 1
        count = _check(tmp_path, last)
    assert count > 100


def test_reopen_after_kill_equals_state_before(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER.format(root=str(ROOT), dir=str(tmp_path))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    while int(proc.stdout.readline()) < 30:
        pass
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        first = [e.value for e in orbit.open("crash", type="eventlog").iter()]
        kv = orbit.open("crash-kv", type="keyvalue").all()
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        assert [e.value for e in orbit.open("crash", type="eventlog").iter()] == first
        assert orbit.open("crash-kv", type="keyvalue").all() == kv
