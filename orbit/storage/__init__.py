"""The embedded storage behind :class:`orbit.OrbitDB`: one LMDB environment per directory.

- :mod:`orbit.storage.env`: the environment, its lock, transactions, re-mapping, and the one place where
  LMDB and OS errors become :class:`orbit.errors.BlockStoreError`;
- :mod:`orbit.storage.layout`: the one definition of the key and record layout of stored logs;
- :mod:`orbit.storage.logs`: each log's entries, order index and heads;
- :mod:`orbit.storage.checkpoints`: each store's authenticated index checkpoint;
- :mod:`orbit.storage.fmt`: the on-disk format stamp of a directory;
- :mod:`orbit.storage.journal`: the write-behind journal in front of LMDB;
- :mod:`orbit.storage.blocks`: the block store over the same environment (:class:`LocalBlockStore`);
- :mod:`orbit.storage.stored_log`: a :class:`~ipfs_log.Log` whose entries, order and heads live in
  LMDB (``open_log``), committed durably before the log changes.

May import: :mod:`ipfs_log` and :mod:`orbit.errors` (the bottom of ``orbit``'s layers).
"""
