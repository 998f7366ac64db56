"""`%conductor db PATH` with a path that cannot hold a history: one line, no traceback,
and the engine stays where it was."""

from __future__ import annotations

import pytest
from shelltools import run

import nbconductor
from nbconductor.errors import StoreError
from nbconductor.storage.duckdb.duckdb_store import DuckDBStore


@pytest.mark.parametrize("path", ["/proc/x/y.duckdb", "/proc/self/status/y.duckdb"])
def test_a_path_whose_folder_cannot_be_made_is_one_line(loaded_shell, capsys, path):
    engine = nbconductor.engine()
    _, out = run(loaded_shell, capsys, f"%conductor db {path}")
    assert "Traceback" not in out
    assert "FileNotFoundError" not in out and "NotADirectoryError" not in out
    assert path in out and "cannot create" in out
    assert nbconductor.engine() is engine and engine.running


def test_the_store_says_which_folder_cannot_be_made():
    with pytest.raises(StoreError, match="cannot create the folder /proc/x"):
        DuckDBStore("/proc/x/y.duckdb")
