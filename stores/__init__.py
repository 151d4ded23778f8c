"""stores: database types whose state is derived from an ipfs_log log."""

__all__: list[str] = []
