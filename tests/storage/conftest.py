"""Fixtures of the Store tests. The contract runs against every Store implementation
through ``store``; the DuckDB-only modules override it with a DuckDB store on ``path``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture
def path(tmp_path) -> Path:
    """Where a history file goes (not created)."""
    return tmp_path / "history.duckdb"
