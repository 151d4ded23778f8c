"""The ``orbit`` command line: a thin shell over :class:`orbit.OrbitDB` (``main(argv) -> int``).

A directory (``--dir``, ``$ORBIT_DIR`` or ``~/.orbit``) holds an identity, the blocks, and the names of
its databases (:mod:`orbit.registry`), so every command finds a database's type by its name. Output is
for people (aligned tables, colour on a terminal) or, with ``--json``, for scripts. ``orbit demo`` runs
the main job: two writers, concurrent updates, a merge, the converged state.
"""

from orbit.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
