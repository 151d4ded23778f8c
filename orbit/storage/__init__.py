"""The embedded storage behind :class:`orbit.OrbitDB`: one LMDB environment per directory.

- :mod:`orbit.storage.env`: the environment, its lock, transactions, re-mapping, and the one place where
  LMDB and OS errors become :class:`orbit.errors.BlockStoreError`;
- :mod:`orbit.storage.layout`: the one definition of the key and record layout of stored logs;
- :mod:`orbit.storage.logs`: each log's entries, order index and heads;
- :mod:`orbit.storage.checkpoints`: each store's authenticated index checkpoint;
- :mod:`orbit.storage.fmt`: the on-disk format stamp of a directory.

The block store over the same environment is :class:`orbit.blockstore.local.LocalBlockStore`.
"""
