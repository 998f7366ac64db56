"""Fixtures for widget tests: real engines, real ipywidgets models, no kernel.

ipywidgets works without a front end (its comms are dummies), so the views are built
and their buttons clicked exactly as in a notebook, minus the browser.
"""

from __future__ import annotations

import pytest

from nbconductor.engine.engine import Engine
from nbconductor.widgets.coalescer import Coalescer


@pytest.fixture
def engine():
    """An engine on a memory store (fast; the DuckDB paths have their own tests)."""
    eng = Engine(None, make_default=False)
    yield eng
    eng.stop(grace=0)


@pytest.fixture
def db_engine(tmp_path):
    """An engine on a DuckDB file: the history table's SQL paths."""
    eng = Engine(tmp_path / "history.duckdb", make_default=False)
    yield eng
    eng.stop(grace=0)


@pytest.fixture
def coalescer():
    """A private refresher thread, so that tests do not share rate limits."""
    c = Coalescer()
    yield c
    c.stop()
