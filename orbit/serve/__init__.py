"""``orbit serve``: one process owns an OrbitDB directory, replicates it, and serves it over HTTP.

- :mod:`orbit.serve.daemon` — the process: opens the directory and its databases, listens, stops cleanly;
- :mod:`orbit.serve.app` — the HTTP API (Starlette): databases, values, log entries, SQL, replication
  status, server-sent events, and ``POST /api/v1/cli`` that runs an ``orbit`` command line inside the
  daemon; :mod:`orbit.serve.openapi` describes it; the explorer page (``explorer/``) is served at ``/``;
- :mod:`orbit.serve.hub` — live updates fanned out to event streams;
- :mod:`orbit.serve.files` — the directory's ``api`` (address) and ``api.token`` (secret) files;
- :mod:`orbit.serve.client` — what the command line uses to find a daemon and go through it;
- :mod:`orbit.serve.protocol`, :mod:`orbit.serve.values` — what both sides share.

This package sits under the command line (which starts the daemon and hands it a command runner) and
over the facade. Importing it imports no web framework: only ``daemon`` and ``app`` do.
"""
