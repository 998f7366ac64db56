"""The Store contract runs against every Store implementation: the ``store`` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
from nbconductor.storage.memory import MemoryStore
from nbconductor.storage.store import Store


@pytest.fixture(params=["memory", "duckdb"])
def store(request, tmp_path) -> Iterator[Store]:
    """A fresh, empty store of each kind."""
    s: Store = MemoryStore() if request.param == "memory" else DuckDBStore(tmp_path / "h.duckdb")
    yield s
    s.close()
