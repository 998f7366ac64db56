"""Which store an engine opens for its ``store`` argument.

Kept apart from the Store protocol, which the implementations import: this module
imports them, when called (``import nbconductor`` does not import DuckDB).
"""

from __future__ import annotations

import os

from nbconductor.storage.store import Store

__all__ = ("open_store",)


def open_store(path_or_store: str | os.PathLike[str] | Store | None) -> Store:
    """The store for ``Engine(store=...)``: a DuckDB history file at a path, a new
    in-memory store for None, or the given store itself."""
    if path_or_store is None:
        from nbconductor.storage.memory import MemoryStore

        return MemoryStore()
    if isinstance(path_or_store, (str, os.PathLike)):
        from nbconductor.storage.duckdb.duckdb_store import DuckDBStore

        return DuckDBStore(os.fspath(path_or_store))
    return path_or_store
