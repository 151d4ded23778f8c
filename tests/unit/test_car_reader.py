"""Reading a CAR file one section at a time, and opening the database a CAR file holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipfs_log.cid import CID
from ipfs_log.codec import encode
from orbit import OrbitDB
from orbit.address import Manifest
from orbit.car import CarReader, car_bytes, read_car
from orbit.errors import CarError
from tests.conftest import ALICE, BOB


def blocks_of(values: list[Any]) -> list[tuple[CID, bytes]]:
    return [(CID.for_block(encode(v)), encode(v)) for v in values]


@given(st.lists(st.integers(0, 2**32), max_size=12), st.integers(0, 12))
def test_the_reader_yields_what_read_car_returns(values: list[int], cut: int) -> None:
    blocks = blocks_of([{"n": v} for v in values])
    data = car_bytes([cid for cid, _ in blocks[:1]], blocks)
    with CarReader(data) as car:
        assert car.roots == read_car(data)[0]
        assert list(car) == blocks  # in file order, duplicates too
        assert car.sections == len(blocks)
    damaged = data[: max(len(data) - cut, 1)]
    try:
        expected: Any = read_car(damaged)
    except CarError as e:
        expected = str(e)
    try:
        with CarReader(damaged) as car:
            got: Any = (car.roots, dict(car))
    except CarError as e:
        got = str(e)
    assert got == expected  # the same checks, the same messages


def test_sections_are_read_as_they_are_asked_for(tmp_path: Path) -> None:
    blocks = blocks_of(["manifest-like", *range(5)])
    path = tmp_path / "x.car"
    path.write_bytes(car_bytes([], blocks)[:-1])  # the last block is damaged

    def the_third(cid: CID, block: bytes) -> CID:
        if block != blocks[2][1]:
            raise CarError("not this one")  # parse refuses a block with an OrbitError
        return cid

    with CarReader(path) as car:
        assert car.first(the_third) == blocks[2][0]
        assert car.sections == 3  # it stopped at the block parse accepted
        with pytest.raises(CarError, match="truncated"):
            list(car)  # the damage is found when the reader gets there
        assert car.sections == 5


def test_first_skips_what_parse_refuses() -> None:
    manifest = Manifest("db", "keyvalue", "*")
    blocks = [*blocks_of([1, 2]), (manifest.cid, manifest.block)]
    with CarReader(car_bytes([], blocks)) as car:
        assert car.first(Manifest.from_block) == manifest
    with CarReader(car_bytes([], blocks[:2])) as car:
        assert car.first(Manifest.from_block) is None


def test_an_unreadable_file_is_a_car_error_caused_by_the_os(tmp_path: Path) -> None:
    with pytest.raises(CarError, match="cannot read") as caught:
        CarReader(tmp_path / "missing.car")
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_open_car_opens_the_database_the_file_holds(tmp_path: Path) -> None:
    with OrbitDB(tmp_path / "a", identity=ALICE) as a:
        kv = a.open("settings", type="keyvalue", write="*")
        for i in range(5):
            kv.put(f"k{i}", i)
        written: list[int] = []
        assert kv.export_car(tmp_path / "kv.car", progress=written.append) == 6
        assert written == [1, 2, 3, 4, 5]
        address = kv.address
    with OrbitDB(tmp_path / "b", identity=BOB) as b:
        db = b.open_car(tmp_path / "kv.car")
        assert (db.address, db.entry_count()) == (address, 0)  # opened, nothing merged yet
        verified: list[int] = []
        assert len(db.import_car(tmp_path / "kv.car", progress=verified.append)) == 5
        assert verified[-1] == 5
        assert b.open_car((tmp_path / "kv.car").read_bytes()) is db  # the same database, open
        with pytest.raises(CarError, match="holds no database manifest"):
            b.open_car(car_bytes([], blocks_of([1])))
