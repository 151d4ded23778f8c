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
from stores import KeyValue
from tests.conftest import ALICE

ROOT = Path(__file__).resolve().parents[2]

WRITER = """
import sys
sys.path.insert(0, {root!r})
from orbit import OrbitDB
from stores import KeyValue
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


CHECKPOINTER = """
import sys
sys.path.insert(0, {root!r})
import orbit.storage.checkpoints as checkpoints
from orbit import OrbitDB
from stores import KeyValue
from tests.conftest import ALICE

save = checkpoints.Checkpoints.save

def announced(self, *args, **kwargs):
    print("saving", flush=True)  # the parent kills the process as soon as it reads this
    save(self, *args, **kwargs)
    print("saved", flush=True)

checkpoints.Checkpoints.save = announced
orbit = OrbitDB({dir!r}, identity=ALICE, checkpoint_every=40)
kv = orbit.open("kv", type="keyvalue")
i = len(kv.log)
print("ready", flush=True)
while True:
    kv.put(f"k{{i % 500}}", "x" * 200 + str(i))
    print(i, flush=True)
    i += 1
"""


@pytest.mark.slow
def test_sigkill_during_checkpoint_saves(tmp_path: Path) -> None:
    """Kill the writer while it saves an index checkpoint; reopen equals a full replay of the log."""
    rng = random.Random(7)
    acked = -1
    for round_ in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHECKPOINTER.format(root=str(ROOT), dir=str(tmp_path))],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        skip = rng.randrange(2)  # kill in the first or the second save of this run
        for line in proc.stdout:
            if line.strip() == "saving":
                if skip == 0:
                    break
                skip -= 1
            elif line.strip().isdigit():
                acked = int(line)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        acked = max([acked, *(int(x) for x in out.split() if x.isdigit())])
        with OrbitDB(tmp_path, identity=ALICE) as orbit:
            kv = orbit.open("kv", type="keyvalue")
            assert len(kv.log) >= acked + 1, f"round {round_}: an acknowledged write is missing"
            replay = KeyValue(Log.load(ALICE, orbit.blocks, kv.heads(), log_id=kv.address))
            assert kv.all() == replay.all()
            assert kv.get(f"k{acked % 500}") == "x" * 200 + str(acked)
