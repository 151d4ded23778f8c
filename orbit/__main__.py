"""``python -m orbit``: the command line."""

from orbit.cli import main

raise SystemExit(main())
