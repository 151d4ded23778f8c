"""Fault injection at every storage operation of put, delete, batch, join, CAR import, iteration, close.

For each scenario, the operations it makes are counted first; then, in a fresh directory each time, the
n-th operation of each kind fails (a block or record write, the heads update, a checkpoint save, a
commit, a read, a cursor, the map's re-open). After each injected failure:

- the call raised an ``OrbitError`` (nothing else), or succeeded if the failure was one it could absorb
  (a periodic checkpoint after a committed write);
- what the database shows equals the acknowledged writes, the log iterates, and the next write works;
- a reopen shows exactly the acknowledged writes, and a fully verified reload of the stored log (hashes,
  signatures, clocks) agrees with it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import orbit.storage.env as env_module
from ipfs_log import Log, OrbitError
from orbit import DatabaseClosedError, KeyValueDatabase, OrbitDB
from stores import KeyValue
from tests.conftest import ALICE, BOB
from tests.faults.lmdb_faults import Faults, install

WRITE = [ALICE.public_key, BOB.public_key]
Scenario = Callable[["Case"], dict[str, Any] | None]


class Case:
    def __init__(self, orbit: OrbitDB, peer: KeyValueDatabase, car: Path) -> None:
        self.orbit = orbit
        self.kv = orbit.open("kv", type="keyvalue", write=WRITE)
        self.events = orbit.open("events", type="eventlog", write=WRITE)
        self.peer = peer
        self.car = car


def _put(c: Case) -> dict[str, Any]:
    c.kv.put("new", 1)
    return {"new": 1}


def _delete(c: Case) -> dict[str, Any]:
    c.kv.delete("k0")
    return {"k0": None}


def _batch(c: Case) -> dict[str, Any]:
    with c.kv.batch() as b:
        b.put("b1", 1)
        b.put("b2", 2)
        b.delete("k1")
    return {"b1": 1, "b2": 2, "k1": None}


def _sync(c: Case) -> dict[str, Any]:
    c.kv.sync_from(c.peer)
    return {f"p{i}": i for i in range(3)}


def _import(c: Case) -> dict[str, Any]:
    c.kv.import_car(c.car)
    return {f"p{i}": i for i in range(3)}


def _iterate(c: Case) -> dict[str, Any]:
    assert [e.value for e in c.events.iter()] == list(range(4))
    return {}


def _close(c: Case) -> None:
    c.kv.close()  # the last puts of _setup are not in a checkpoint yet: close saves one


SCENARIOS: dict[str, Scenario] = {
    "put": _put,
    "delete": _delete,
    "batch": _batch,
    "sync": _sync,
    "import_car": _import,
    "iterate": _iterate,
    "close": _close,
}


def _apply(model: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    out = dict(model)
    for key, value in change.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("peer")
    with OrbitDB(root / "peer", identity=BOB) as orbit:
        kv = orbit.open("kv", type="keyvalue", write=WRITE)
        for i in range(3):
            kv.put(f"p{i}", i)
        car = root / "peer.car"
        kv.export_car(car)
        yield kv, car


def _setup(directory: Path, peer: Any) -> tuple[Case, dict[str, Any]]:
    orbit = OrbitDB(directory, identity=ALICE, checkpoint_every=3)
    case = Case(orbit, *peer)
    for i in range(5):
        case.kv.put(f"k{i}", i)
    for i in range(4):
        case.events.add(i)
    return case, case.kv.all()


def _check_reopened(directory: Path, expected: dict[str, Any]) -> None:
    with OrbitDB(directory, identity=ALICE) as orbit:
        kv = orbit.open("kv", type="keyvalue", write=WRITE)
        assert kv.all() == expected
        verified = Log.load(ALICE, orbit.blocks, kv.heads(), log_id=kv.address, access=kv.manifest.access)
        assert [e.cid for e in verified] == [e.cid for e in kv.log]
        assert KeyValue(verified).all() == expected
        events = orbit.open("events", type="eventlog", write=WRITE)
        assert [e.value for e in events.iter()] == list(range(4))


def _run(name: str, directory: Path, faults: Faults, peer: Any, kind: str | None, nth: int) -> None:
    case, model = _setup(directory, peer)
    if kind is None:
        faults.count()
    else:
        faults.arm(kind, nth)
    raised: OrbitError | None = None
    try:
        change = SCENARIOS[name](case)
    except OrbitError as e:
        raised, change = e, None
    faults.stop()
    if kind is not None and not faults.fired:
        assert raised is None
    if raised is None and change is not None:
        model = _apply(model, change)
    if name == "close":  # closed even when the checkpoint failed; reopening catches up
        with pytest.raises(DatabaseClosedError):
            case.kv.get("k2")
        kv = case.orbit.open("kv", type="keyvalue", write=WRITE)
        assert kv.all() == model
    else:
        kv = case.kv
        assert kv.all() == model, f"memory differs after {kind}#{nth}: {raised}"
        assert len(list(kv.log)) == kv.entry_count()
    kv.put("after", 99)
    model = _apply(model, {"after": 99})
    case.orbit.close()
    _check_reopened(directory, model)


def _cases(name: str, tmp_path: Path, faults: Faults, peer: Any) -> list[tuple[str, int]]:
    _run(name, tmp_path / "count", faults, peer, None, 0)
    counts = dict(faults.counts)
    cases = []
    for kind, n in sorted(counts.items()):
        for nth in sorted({1, 2, n // 2, n - 1, n} & set(range(1, n + 1))):
            cases.append((kind, nth))
    return cases


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_injected_storage_failure_leaves_a_consistent_database(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, peer: Any
) -> None:
    monkeypatch.setattr(env_module, "CHECK_EVERY", 1)  # every transaction re-maps: faults there too
    monkeypatch.setattr(env_module, "MAPPED_LIMIT", 0)
    faults = install(monkeypatch, tmp_path)
    cases = _cases(name, tmp_path, faults, peer)
    kinds = {kind for kind, _ in cases}
    assert {"cursor"} <= kinds if name == "iterate" else {"commit", "open"} <= kinds
    for i, (kind, nth) in enumerate(cases):
        _run(name, tmp_path / f"case{i}", faults, peer, kind, nth)
        assert faults.fired, f"{kind}#{nth} was never reached"


def test_the_faults_cover_every_write_the_store_makes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, peer: Any
) -> None:
    faults = install(monkeypatch, tmp_path)
    kinds: set[str] = set()
    for name in ("put", "batch", "sync", "iterate", "close"):
        _run(name, tmp_path / name, faults, peer, None, 0)
        kinds |= set(faults.counts)
    expected = {
        "put:entries",
        "put:order",
        "put:where",
        "put:heads",
        "put:checkpoints",
        "commit",
        "get",
        "cursor",
    }
    assert expected <= kinds
