"""The ``orbit`` command line: a thin shell over :class:`orbit.OrbitDB` (``main(argv) -> int``).

A directory (``--dir``, ``$ORBIT_DIR`` or ``~/.orbit``) holds an identity, the blocks, and the names of
its databases (:mod:`orbit.registry`), so every command finds a database's type by its name. Output is
for people (aligned tables, colour on a terminal) or, with ``--json``, for scripts. ``orbit demo`` runs
the main job: two writers, concurrent updates, a merge, the converged state.

Every operation is a library call: ``_main`` parses the command line and dispatches to one module per
concept — ``_identity`` (``id``), ``_databases`` (``create``, ``open``, ``ls``, ``info``, ``drop``),
``_values`` (reads and writes by store type), ``_documents`` (``find``, ``query``: the language is
:mod:`stores.documents_query`), ``_sql``, ``_log``, ``_transfer`` (CAR ``export``/``import``),
``_replication`` (``follow``, ``status``), ``_demo`` — over ``_session`` (the directory, its registry,
the IPFS node through ``OrbitDB(ipfs=…)``), ``_input`` and ``_output``. The CLI is the top layer: it
may import anything in ``orbit``; nothing imports it.
"""

from orbit.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
