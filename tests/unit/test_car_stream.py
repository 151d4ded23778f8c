"""The streaming CAR writer: same bytes as car_bytes, one block in memory at a time, atomic on disk."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipfs_log.cid import CID
from ipfs_log.codec import encode
from orbit.car import car_bytes, read_car, write_car
from orbit.errors import CarError


@given(st.lists(st.binary(max_size=300), max_size=20), st.integers(0, 3))
def test_written_car_reads_back(payloads: list[bytes], nroots: int) -> None:
    blocks = [(CID.for_block(encode(p)), encode(p)) for p in payloads]
    roots = [cid for cid, _ in blocks[:nroots]]
    out = io.BytesIO()
    assert write_car(out, roots, iter(blocks)) == len(blocks)
    assert out.getvalue() == car_bytes(roots, blocks)
    assert read_car(out.getvalue()) == (roots, dict(blocks))


def test_blocks_are_written_as_they_come() -> None:
    events: list[str] = []

    class Recorder(io.BytesIO):
        def write(self, data) -> int:
            events.append("write")
            return super().write(data)

    def source() -> Iterator[tuple[CID, bytes]]:
        for i in range(3):
            events.append(f"yield {i}")
            block = encode({"i": i})
            yield CID.for_block(block), block

    write_car(Recorder(), [], source())
    # each block is written before the next one is produced: nothing accumulates
    assert events.index("yield 1") > events.index("yield 0") + 1
    assert events.index("yield 2") > events.index("yield 1") + 1


def test_path_is_written_atomically(tmp_path: Path) -> None:
    block = encode({"ok": True})
    target = tmp_path / "db.car"
    assert write_car(target, [CID.for_block(block)], [(CID.for_block(block), block)]) == 1
    assert read_car(target.read_bytes())[1] == {CID.for_block(block): block}

    def failing() -> Iterator[tuple[CID, bytes]]:
        yield CID.for_block(block), block
        raise RuntimeError("source failed")

    other = tmp_path / "other.car"
    with pytest.raises(RuntimeError, match="source failed"):
        write_car(other, [], failing())
    assert not other.exists()
    assert not (tmp_path / "other.car.tmp").exists()


def test_unwritable_path_is_a_car_error(tmp_path: Path) -> None:
    with pytest.raises(CarError, match="cannot write"):
        write_car(tmp_path / "missing-dir" / "x.car", [], [])
