"""History as Parquet files: one file per table, from one consistent snapshot.

Used by ``nbconductor export --parquet DIR`` through :meth:`Store.export_parquet`.
Stored values go too: ``payloads.parquet`` lists them (blobs inline), and each value
stored as a table (a frame) is its own ``payload_<hash>.parquet``, so a restore can
recreate it with ``CREATE TABLE payload_<hash> AS SELECT * FROM read_parquet(...)``. The
tables are read in a single read-only transaction, so the files agree with each other
even while an engine keeps writing. This module does not import duckdb itself: the
:class:`~nbconductor.storage.duckdb.duckdb_store.DuckDBStore` hands it one of its reader
cursors, on which DuckDB's own Parquet writer runs.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbconductor.errors import StoreError
from nbconductor.storage.duckdb import payload_tables

if TYPE_CHECKING:
    from nbconductor.storage.store import Store

__all__ = ("EXPORTED_TABLES", "export_parquet", "write_tables")

#: Table -> the query that exports it, in a stable row order.
EXPORTED_TABLES: dict[str, str] = {
    "executions": "SELECT * FROM executions ORDER BY created_at, id",
    "events": "SELECT * FROM events ORDER BY execution_id, seq",
    "definitions": "SELECT * FROM definitions ORDER BY registered_at, name, kind, version",
    "schedules": "SELECT * FROM schedules ORDER BY id",
    "queues": "SELECT * FROM queues ORDER BY name",
    "payloads": "SELECT * FROM payloads ORDER BY hash",
}


def export_parquet(store: Store, directory: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Write ``<table>.parquet`` for each history table of ``store`` into ``directory``.

    The directory is created (mode 0o700) if missing; existing files of the same names
    are replaced, each atomically. Files are written owner-only (0o600), like the
    history itself, since payloads may be private.

    Args:
        store: an open store (read-only or not; nothing is written to it).
        directory: where the files go.

    Returns:
        ``{table: {"path": ..., "rows": n}}``.

    Raises:
        StoreError: the store cannot export Parquet (only a DuckDB store can), or DuckDB
            could not write a file (its message is included).

    Example:
        >>> with DuckDBStore("history.duckdb", read_only=True) as store:
        ...     export_parquet(store, "exported")["events"]["rows"]
        42
    """
    return store.export_parquet(directory)


def write_tables(
    cursor: Any, source: str | None, directory: str | os.PathLike[str]
) -> dict[str, dict[str, Any]]:
    """The export itself, on a DuckDB reader ``cursor`` of the history file ``source``
    (see :func:`export_parquet`)."""
    target = Path(directory).expanduser().resolve()
    if not target.exists():
        target.mkdir(mode=0o700, parents=True)
        os.chmod(target, 0o700)  # mkdir's mode passes through the umask
    elif not target.is_dir():
        raise StoreError(f"cannot export into {target}: it is not a directory")
    out: dict[str, dict[str, Any]] = {}
    written: list[Path] = []
    cursor.execute("BEGIN TRANSACTION READ ONLY")
    try:
        tables = dict(EXPORTED_TABLES)
        for (digest,) in cursor.execute(
            "SELECT hash FROM payloads WHERE data IS NULL ORDER BY hash"
        ).fetchall():
            name = payload_tables.table_name(digest)  # checks the hash: it names a file
            tables[name] = f"SELECT * FROM {name}"
        for table, query in tables.items():
            final = target / f"{table}.parquet"
            partial = target / f".{table}.parquet.{os.getpid()}.partial"
            written.append(partial)
            cursor.sql(query).write_parquet(str(partial))
            os.chmod(partial, 0o600)
            ((rows,),) = cursor.execute(f"SELECT count(*) FROM {table}").fetchall()
            out[table] = {"path": str(final), "rows": rows}
    except Exception as exc:
        for path in written:
            with suppress(OSError):
                path.unlink()
        if isinstance(exc, StoreError):
            raise
        raise StoreError(f"exporting {source} to {target} failed: {exc}") from exc
    finally:
        cursor.execute("ROLLBACK")
    # Renamed only once every table is written: a failure leaves the old files intact.
    for table, partial in zip(tables, written, strict=True):
        os.replace(partial, out[table]["path"])
    return out
