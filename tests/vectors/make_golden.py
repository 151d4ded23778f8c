"""Build the golden entry vectors; run by hand to (re)write golden.json after a deliberate format change.

    python -m tests.vectors.make_golden

Everything is deterministic: fixed seeds, fixed payloads, Ed25519's deterministic signatures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ipfs_log import CID, Identity, IPLDKind, Log, MemoryBlockStore, WriteList

GOLDEN = Path(__file__).with_name("golden.json")
LOG_ID = "/orbitdb/golden-vectors"
SEEDS = {name: f"golden/{name}".encode().ljust(32, b"\0") for name in ("alice", "bob")}

LINK = CID.for_block(b"\xa0")  # the CID of the empty map, as a link inside a payload

ALICE_PAYLOADS: list[IPLDKind] = [
    "hello",
    {"op": "PUT", "key": "k", "value": {"n": 1, "f": 1.5, "z": -0.0, "ok": True, "none": None}},
    # (merge with bob goes here)
    {"op": "DEL", "key": "k"},
    [0, 23, 24, 255, 256, 65536, 2**32, 2**64 - 1, -1, -24, -25, -(2**64)],
    {"text": "żółw 🐢", "bytes": b"\x00\x01\xfe\xff", "link": LINK, "nested": [[[]], {}]},
    5e-324,
    {"op": "INC", "amount": -3},
    {"op": "ADD", "value": "x" * 40},
]


def build() -> dict[str, Any]:
    """Replay the fixed history and describe every entry it creates."""
    alice, bob = (Identity.from_seed(SEEDS[n]) for n in ("alice", "bob"))
    access = WriteList([alice.public_key, bob.public_key])
    store = MemoryBlockStore()
    a = Log(alice, store, log_id=LOG_ID, access=access)
    b = Log(bob, store, log_id=LOG_ID, access=access)
    written = [(a.append(ALICE_PAYLOADS[0]), "alice: genesis, a string")]
    written.append((a.append(ALICE_PAYLOADS[1]), "alice: a PUT with every scalar kind"))
    written.append((b.append(b"\x00\x01"), "bob: genesis, bytes"))
    a.join(b)
    written.append((a.append(ALICE_PAYLOADS[2]), "alice: merge of two heads (next has 2 links)"))
    for i, payload in enumerate(ALICE_PAYLOADS[3:]):
        written.append((a.append(payload), f"alice: entry {i + 4} (refs grow as powers of 2)"))
    return {
        "_README": "Golden entries of this project's native format. Regenerate only on purpose: "
        "python -m tests.vectors.make_golden",
        "log_id": LOG_ID,
        "writers": {
            name: {"seed_hex": SEEDS[name].hex(), "did": ident.did}
            for name, ident in (("alice", alice), ("bob", bob))
        },
        "entries": [
            {
                "description": description,
                "cid": str(e.cid),
                "cid_base58btc": e.cid.encode("base58btc"),
                "time": e.time,
                "writer": alice.did if e.key == alice.public_key else bob.did,
                "next": [str(c) for c in e.next],
                "refs": [str(c) for c in e.refs],
                "block_hex": e.block.hex(),
            }
            for e, description in written
        ],
        "order": [str(e.cid) for e in a],
        "heads": [str(c) for c in a.head_cids],
    }


def main() -> None:
    """Write golden.json."""
    GOLDEN.write_text(json.dumps(build(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
