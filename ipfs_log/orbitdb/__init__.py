"""OrbitDB v2 interoperability: entries, identities and logs as ``@orbitdb/core`` 4 writes them.

Beside orbit's native format (Ed25519, IPLD links), this subpackage reads, verifies and writes the
format of OrbitDB JS: DAG-CBOR entries with base58btc hash strings, secp256k1 signatures (deterministic,
low-S, DER, hex) and two-key identity blocks. It stays pure (no I/O): blocks come from and go to a
:class:`ipfs_log.BlockStore`. The manifest, access controller and ``/orbitdb/`` address live in
:mod:`orbit.orbitdb.compat`.

Verification is stricter than OrbitDB's own in one deliberate way: an entry's ``key`` must be its
identity's ``publicKey`` (OrbitDB 3.x/4.x checks the signature against ``key`` but permission against
the identity, so anyone could sign with her own key and name a permitted writer's identity).
"""

from ipfs_log.orbitdb.entry import ENTRY_VERSION, MAX_TIME, OrbitEntry
from ipfs_log.orbitdb.hashes import cid_to_hash, hash_to_cid
from ipfs_log.orbitdb.identity import IDENTITY_TYPE, MAX_IDENTITY_BYTES, OrbitIdentity, OrbitWriter
from ipfs_log.orbitdb.keys import (
    SigningKey,
    check_public_key,
    check_signature,
    parse_signature,
    verify_signature,
)
from ipfs_log.orbitdb.log import (
    DEFAULT_REFERENCES_COUNT,
    IdentityWriteList,
    OrbitAccess,
    OrbitLog,
    Progress,
)

__all__ = [
    "DEFAULT_REFERENCES_COUNT",
    "ENTRY_VERSION",
    "IDENTITY_TYPE",
    "MAX_IDENTITY_BYTES",
    "MAX_TIME",
    "IdentityWriteList",
    "OrbitAccess",
    "OrbitEntry",
    "OrbitIdentity",
    "OrbitLog",
    "OrbitWriter",
    "Progress",
    "SigningKey",
    "check_public_key",
    "check_signature",
    "cid_to_hash",
    "hash_to_cid",
    "parse_signature",
    "verify_signature",
]
