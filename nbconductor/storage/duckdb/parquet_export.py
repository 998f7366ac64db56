"""History as Parquet files: one file per table, from one consistent snapshot.

Used by ``nbconductor export --parquet DIR``. The tables are read in a single read-only
transaction, so the files agree with each other even while an engine keeps writing.
This module does not import duckdb itself: it runs DuckDB's own Parquet writer on a
reader cursor of the :class:`~nbconductor.storage.duckdb.duckdb_store.DuckDBStore`.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path
from typing import Any

from nbconductor.errors import StoreError

__all__ = ("EXPORTED_TABLES", "export_parquet")

#: Table -> the query that exports it, in a stable row order.
EXPORTED_TABLES: dict[str, str] = {
    "executions": "SELECT * FROM executions ORDER BY created_at, id",
    "events": "SELECT * FROM events ORDER BY execution_id, seq",
    "definitions": "SELECT * FROM definitions ORDER BY registered_at, name, kind, version",
    "schedules": "SELECT * FROM schedules ORDER BY id",
}


def export_parquet(store: Any, directory: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Write ``<table>.parquet`` for each history table into ``directory``.

    The directory is created (mode 0o700) if missing; existing files of the same names
    are replaced, each atomically. Files are written owner-only (0o600), like the
    history itself, since payloads may be private.

    Args:
        store: an open DuckDBStore (read-only or not; nothing is written to it).
        directory: where the files go.

    Returns:
        ``{table: {"path": ..., "rows": n}}``.

    Raises:
        StoreError: the store is not a DuckDB store, or DuckDB could not write a file
            (its message is included).

    Example:
        >>> with DuckDBStore("history.duckdb", read_only=True) as store:
        ...     export_parquet(store, "exported")["events"]["rows"]
        42
    """
    cursor_of = getattr(store, "_cursor", None)
    if cursor_of is None:
        raise StoreError(
            f"{type(store).__name__} cannot export Parquet; only a DuckDB history file can"
        )
    target = Path(directory).expanduser().resolve()
    if not target.exists():
        target.mkdir(mode=0o700, parents=True)
        os.chmod(target, 0o700)  # mkdir's mode passes through the umask
    elif not target.is_dir():
        raise StoreError(f"cannot export into {target}: it is not a directory")
    out: dict[str, dict[str, Any]] = {}
    written: list[Path] = []
    with cursor_of() as cursor:
        cursor.execute("BEGIN TRANSACTION READ ONLY")
        try:
            for table, query in EXPORTED_TABLES.items():
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
            raise StoreError(f"exporting {store.path} to {target} failed: {exc}") from exc
        finally:
            cursor.execute("ROLLBACK")
    # Renamed only once every table is written: a failure leaves the old files intact.
    for table, partial in zip(EXPORTED_TABLES, written, strict=True):
        os.replace(partial, out[table]["path"])
    return out
