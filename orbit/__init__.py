"""orbit: an OrbitDB-style CRDT database over content-addressed blocks."""

__all__: list[str] = []
