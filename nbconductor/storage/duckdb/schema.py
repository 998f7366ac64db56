"""The history file's schema: its tables, their migrations, and the check on opening.

A file is ours when its ``meta`` table says ``application = nbconductor``; its
``schema_version`` counts the migrations applied. Opening a file read-write creates the
schema of a new file and upgrades an older one, each migration in its own transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nbconductor._version import __version__
from nbconductor.errors import NotAHistoryFile, SchemaTooNew, StoreError
from nbconductor.storage.duckdb import payload_tables

__all__ = ("APPLICATION", "MIGRATIONS", "prepare")

APPLICATION = "nbconductor"

# Indexes, as measured (see benchmarks/bench_store.py):
# - events(execution_id): load_history of a short history among 1M events (random
#   ids) 1.5 ms with it, 13-16 ms without; its cost per 2-event commit is lost in the
#   noise. DuckDB uses it only for a filter on execution_id alone, hence the shape of
#   sql.LOAD_HISTORY. A PRIMARY KEY (execution_id, seq) instead costs ~0.1 ms more per
#   commit and DuckDB uses it less well for these lookups (1.7 ms), so seq uniqueness
#   is left to the engine, which guarantees it.
# - executions(id) PRIMARY KEY: rejects a duplicate id inside the transaction and
#   serves get_execution (0.6 ms at 100k executions).
# - None on executions(status) or (created_at): with them a status update costs 2.3 ms
#   instead of 1.6 ms (an indexed column is updated as delete + insert) and
#   open_executions 19 ms instead of 10 ms at 100k executions. Executions are appended
#   in created_at order, so DuckDB's zone maps already prune since/until scans.

_SCHEMA_V1 = """
CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE TABLE executions (
    id VARCHAR PRIMARY KEY,
    workflow VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    closed_at TIMESTAMP,
    input VARCHAR NOT NULL,
    result VARCHAR,
    error VARCHAR,
    parent_id VARCHAR,
    origin_id VARCHAR,
    tags VARCHAR[] NOT NULL,
    condition VARCHAR
);
CREATE TABLE events (
    execution_id VARCHAR NOT NULL,
    seq INTEGER NOT NULL,
    kind VARCHAR NOT NULL,
    "at" TIMESTAMP NOT NULL,
    command INTEGER,
    name VARCHAR,
    attempt INTEGER,
    data VARCHAR NOT NULL
);
CREATE INDEX events_by_execution ON events (execution_id);
CREATE TABLE definitions (
    name VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    registered_at TIMESTAMP NOT NULL,
    PRIMARY KEY (name, kind, version)
);
COMMENT ON TABLE executions IS 'nbconductor executions; timestamps are UTC, payloads JSON text';
COMMENT ON TABLE events IS 'nbconductor histories; "at" is UTC, data is JSON text';
"""


def _create_v1(con: Any) -> None:
    """Version 1: the initial schema."""
    con.execute(_SCHEMA_V1)
    con.execute(
        "INSERT INTO meta VALUES ('application', ?), ('created_by', ?), ('schema_version', '0')",
        [APPLICATION, __version__],
    )


def _add_schedules(con: Any) -> None:
    """Version 2: schedules, their specs and firing state (codec JSON text)."""
    con.execute(
        "CREATE TABLE schedules (id VARCHAR PRIMARY KEY, workflow VARCHAR NOT NULL, "
        "spec VARCHAR NOT NULL, state VARCHAR NOT NULL, updated_at TIMESTAMP NOT NULL)"
    )


def _add_queues(con: Any) -> None:
    """Version 3: task queues and their limits (codec JSON text)."""
    con.execute(
        "CREATE TABLE queues (name VARCHAR PRIMARY KEY, spec VARCHAR NOT NULL, "
        "updated_at TIMESTAMP NOT NULL)"
    )


#: Forward migrations: ``MIGRATIONS[n - 1]`` turns schema version n - 1 into version n.
#: Each runs in its own transaction with the update of ``meta.schema_version``.
MIGRATIONS: list[Callable[[Any], None]] = [
    _create_v1,
    _add_schedules,
    _add_queues,
    payload_tables.MIGRATION,
]


def prepare(con: Any, path: str, *, read_only: bool) -> None:
    """Check that the file behind ``con`` is a history of a schema this version reads,
    creating the schema of an empty file and upgrading an older one (unless read-only).

    Raises:
        NotAHistoryFile: the database is empty (read-only) or not ours.
        SchemaTooNew: a newer nbconductor wrote it.
        StoreError: it needs an upgrade but is open read-only, or the upgrade failed.
    """
    tables = {
        name
        for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database()"
        ).fetchall()
    }
    latest = len(MIGRATIONS)
    if not tables:
        if read_only:
            raise NotAHistoryFile(f"{path} is an empty DuckDB database, not an nbconductor history")
        _migrate(con, path, 0, latest)
        return
    meta: dict[str, str] = {}
    if "meta" in tables:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("application") != APPLICATION or "schema_version" not in meta:
        listed = ", ".join(sorted(tables)[:5])
        raise NotAHistoryFile(
            f"{path} is a DuckDB database of something else (tables: {listed}), "
            "not an nbconductor history; nbconductor will not write into it. Use "
            "another file by setting NBCONDUCTOR_DB."
        )
    version = int(meta["schema_version"])
    if version > latest:
        raise SchemaTooNew(
            f"{path} has history schema version {version}, but nbconductor "
            f"{__version__} supports versions up to {latest}; upgrade nbconductor "
            "(pip install -U nbconductor) to open it, or use another history file."
        )
    if version < latest:
        if read_only:
            raise StoreError(
                f"{path} has history schema version {version} and needs an "
                f"upgrade to version {latest}; open it once read-write (start the "
                "engine) to upgrade it."
            )
        _migrate(con, path, version, latest)


def _migrate(con: Any, path: str, current: int, latest: int) -> None:
    for version in range(current + 1, latest + 1):
        con.begin()
        try:
            MIGRATIONS[version - 1](con)
            con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(version)])
            con.commit()
        except BaseException as exc:
            con.rollback()
            raise StoreError(f"upgrading {path} to schema version {version} failed: {exc}") from exc
