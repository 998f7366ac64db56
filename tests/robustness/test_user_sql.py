"""User SQL (``%conductor sql``, ``nbconductor sql``, the socket) reads the history
tables only: no files, no URLs, no extensions fetched from the network."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nbconductor.errors import StoreError
from nbconductor.storage.duckdb.duckdb_store import DuckDBStore


@pytest.fixture
def store(tmp_path):
    s = DuckDBStore(tmp_path / "history.duckdb")
    yield s
    s.close()


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM read_blob('/etc/hostname')",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM read_csv('http://example.invalid/x.csv')",
        "SELECT * FROM executions, LATERAL (SELECT * FROM read_text('/etc/hostname'))",
        "WITH x AS (SELECT * FROM glob('/etc/*')) SELECT * FROM x",
        "SELECT * FROM events UNION ALL SELECT * FROM 'other.duckdb'",
        "SELECT * FROM query('SELECT 1')",
        "EXPLAIN ANALYZE SELECT * FROM read_text('/etc/hostname')",
        "SELECT getenv('HOME')",
        "SELECT * FROM duckdb_secrets()",
    ],
)
def test_queries_that_reach_outside_the_file_are_refused(store, query):
    with pytest.raises(StoreError, match=r"not allowed|not a table of the history file"):
        store.sql(query)


def test_functions_of_extensions_are_not_fetched(store):
    with pytest.raises(StoreError, match="query failed"):
        store.sql("SELECT st_point(1, 2)")  # spatial would be installed from the network


@pytest.mark.parametrize(
    "query",
    [
        "SELECT status, count(*) FROM executions GROUP BY ALL",
        "DESCRIBE events",
        "SUMMARIZE executions",
        "SHOW TABLES",
        "EXPLAIN SELECT * FROM events",
        "WITH recent AS (SELECT * FROM executions) SELECT count(*) FROM recent",
        "SELECT * FROM information_schema.tables",
        "SELECT * FROM range(3)",
        "SELECT e.id FROM executions e JOIN events v ON e.id = v.execution_id",
    ],
)
def test_queries_over_the_history_still_run(store, query):
    columns, _ = store.sql(query)
    assert columns


def test_the_cli_refuses_reading_a_file(tmp_path):
    db = tmp_path / "history.duckdb"
    DuckDBStore(db).close()
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbconductor.cli",
            "--db",
            str(db),
            "sql",
            f"SELECT content FROM read_text('{secret}')",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "TOP-SECRET" not in done.stdout + done.stderr
    assert "read_text" in done.stdout + done.stderr
