"""Fixtures for the robustness tests: faults, bad input and hostile files."""

from __future__ import annotations

import pytest


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "history.duckdb"
