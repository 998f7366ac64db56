"""The DuckDB history store: one file per notebook, one writer process at a time.

This is the only module of nbconductor that imports duckdb: it holds the connections
(opening, the group commit, reader cursors, closing) and runs every statement. What
the statements are lives beside it, in modules that take a cursor or a callable:
:mod:`~nbconductor.storage.duckdb.history_reads` (the read queries),
:mod:`~nbconductor.storage.duckdb.pruning` (a prune, batch by batch),
:mod:`~nbconductor.storage.duckdb.payload_tables` (stored values),
:mod:`~nbconductor.storage.duckdb.user_query` (what a user's SQL may read) and
:mod:`~nbconductor.storage.duckdb.sql` (SQL text and row conversions).

Tables (see :mod:`nbconductor.storage.duckdb.schema`):

- ``meta``: key/value pairs; ``application``, ``schema_version``, ``created_by``.
- ``executions``: one row per execution (see :class:`ExecutionRecord`).
- ``events``: every execution's append-only history (the engine keeps seq unique).
- ``definitions``: versions of workflow and task sources.
- ``schedules``: schedule specs and their firing state (schema version 2).
- ``queues``: task queues and their limits (schema version 3).
- ``payloads``, ``payload_<hash>`` and the view ``payload_refs``: large values stored
  once by content hash (schema version 4; see
  :mod:`nbconductor.storage.duckdb.payload_tables`).

Performance (2-core machine; ``python -m benchmarks.bench_store``): parsing and
planning a DuckDB statement costs 0.3-0.5 ms and a commit about 0.4 ms more, while
``executemany`` pays per row. So new executions and events go through DuckDB appenders
(no SQL parsed per commit): a 2-event batch commits in ~0.85 ms, 1,000 events in
~3.5 ms, against ~1.2 ms and ~6.5 ms for ``INSERT ... SELECT unnest($1), ...`` with
list parameters. A batch that is a single step runs in autocommit, without
BEGIN/COMMIT. Reads use cursors of their own and never wait for the writer.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from nbconductor.errors import NotAHistoryFile, StoreError
from nbconductor.storage.duckdb import connection_settings as settings
from nbconductor.storage.duckdb import history_file, parquet_export, payload_tables, pruning, schema
from nbconductor.storage.duckdb import sql as duckdb_sql
from nbconductor.storage.duckdb.gil_handoff import short_switch_interval
from nbconductor.storage.duckdb.history_reads import HistoryReads
from nbconductor.storage.duckdb.relation import HistoryRelation
from nbconductor.storage.duckdb.user_query import check_user_statement
from nbconductor.storage.records import Batch, PruneReport
from nbconductor.storage.values import StoredValue

__all__ = ("DuckDBStore",)

# A concurrent store of the same value: a catalog write-write conflict on its table, or
# the second insert of its key.
_PAYLOAD_CONFLICT = (duckdb.TransactionException, duckdb.ConstraintException)


class DuckDBStore(HistoryReads):
    """A history store in a DuckDB file.

    The read queries are in :class:`~nbconductor.storage.duckdb.history_reads.HistoryReads`;
    this class owns the connections: opening, group commit, stored values, user SQL,
    pruning and closing.

    Args:
        path: The history file; created (with a private parent directory) if missing.
        read_only: Open for reading only, e.g. from the CLI while no engine runs.
            Several read-only stores (in any processes) may share a file; a writer
            excludes everyone else.

    Raises:
        StoreLocked: Another process, or another store in this one, holds the file.
        NotAHistoryFile: The file is not a DuckDB database, or one that is not ours.
        SchemaTooNew: The file was written by a newer nbconductor.

    Example:
        >>> store = DuckDBStore(".nbconductor/orders.duckdb")
        >>> store.count_executions()
        0
        >>> store.close()
    """

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        resolved = Path(path).expanduser().resolve()
        self.path: str | None = str(resolved)
        self.read_only = read_only
        self._wal = f"{resolved}.wal"
        self._closed = False
        self._write_lock = threading.Lock()
        self._state = threading.Condition()  # guards the reader cursors and _closed
        self._idle: list[Any] = []
        self._busy: set[Any] = set()
        self._appenders: dict[str, Any] = {}  # table -> duckdb Appender on the writer
        #: Seconds a stored value is spared by collection after it was stored or found
        #: stored again (its event may not be appended yet); tests set 0.
        self.payload_grace = payload_tables.GRACE_SECONDS
        # Striped by hash: two threads storing the same value take turns (the second
        # finds it stored) instead of meeting in a DuckDB write-write conflict.
        self._payload_locks = [threading.Lock() for _ in range(32)]
        history_file.claim(str(resolved), read_only)
        # A store dropped without close() (say, a notebook cell run twice) must not keep
        # its path claimed for the rest of the process.
        self._release = weakref.finalize(self, history_file.release, str(resolved))
        try:
            with history_file.owner_only_files():
                self._con = self._connect(resolved)
            try:
                with history_file.owner_only_files():  # creating the tables writes a WAL
                    try:
                        schema.prepare(self._con, str(resolved), read_only=read_only)
                    except duckdb.Error as exc:  # e.g. a truncated file: say what to do
                        raise history_file.open_error(exc, str(resolved), read_only) from exc
                # Readers get cursors from their own root connection, so making one
                # never touches the writer's connection while it commits.
                self._root = self._con.cursor()
            except BaseException:
                self._con.close()
                raise
        except BaseException:
            self._release()
            raise
        if not read_only:
            history_file.make_private(str(resolved))
            self._secure_wal()

    # -- opening ------------------------------------------------------------------------

    def _connect(self, resolved: Path) -> Any:
        path = str(resolved)
        if self.read_only:
            if not resolved.is_file() or resolved.stat().st_size == 0:
                raise NotAHistoryFile(f"there is no nbconductor history at {path}")
        else:
            try:
                history_file.make_private_dir(resolved.parent)
            except OSError as exc:  # say it in one line: the path is the user's input
                raise StoreError(
                    f"cannot create the folder {resolved.parent} for history file {path} "
                    f"({exc.strerror or exc}); choose a path in a folder you can write"
                ) from None
            if resolved.is_file() and resolved.stat().st_size == 0:
                resolved.unlink()  # DuckDB refuses empty files; treat one as brand new
        try:
            config = settings.READER if self.read_only else settings.WRITER
            return duckdb.connect(path, read_only=self.read_only, config=config)
        except duckdb.Error as exc:
            raise history_file.open_error(exc, path, self.read_only) from exc

    def _secure_wal(self) -> None:
        # DuckDB deletes the WAL at each checkpoint and creates it again with the
        # umask's mode; tighten it whenever it is open to others (one stat per commit;
        # comparing inodes would miss a new WAL that reuses the old inode number).
        try:
            if os.stat(self._wal).st_mode & 0o077:
                history_file.make_private(self._wal)
        except FileNotFoundError:
            pass

    # -- writing ------------------------------------------------------------------------

    def commit(self, batch: Batch) -> None:
        """Write the whole batch in one transaction: all of it is durable, or none of it.

        Raises:
            StoreError: The batch was rolled back (e.g. a new execution's id exists, an
                update names an unknown execution); the cause is chained.
        """
        if self.read_only:
            raise StoreError(f"{self.path} is open read-only; the engine writes history")
        if not batch:
            self._check_open()
            return
        # Build every row before taking the lock: conversion errors leave no trace.
        steps: list[tuple[str, Any, Any, int | None]] = []
        if batch.new_executions:
            steps.append(
                ("append", "executions", duckdb_sql.execution_rows(batch.new_executions), None)
            )
        if batch.updates:
            steps.append(("sql", *duckdb_sql.update_statement(batch.updates)))
        if batch.events:
            steps.append(("append", "events", duckdb_sql.event_rows(batch.events), None))
        if batch.definitions:
            steps.append(("sql", *duckdb_sql.definition_statement(batch.definitions), None))
        if batch.schedules or batch.deleted_schedules:
            steps.extend(
                ("sql", sql, params, None)
                for sql, params in duckdb_sql.schedule_statements(
                    batch.schedules, batch.deleted_schedules
                )
            )
        if batch.queues or batch.deleted_queues:
            steps.extend(
                ("sql", sql, params, None)
                for sql, params in duckdb_sql.queue_statements(batch.queues, batch.deleted_queues)
            )
        with (
            self._write_lock,
            history_file.owner_only_files(),  # the WAL may be created
            short_switch_interval(),  # see gil_handoff: busy threads made commits wait
        ):
            self._check_open()
            con = self._con
            try:
                if len(steps) == 1 and steps[0][3] is None:
                    # One statement is its own transaction: skip BEGIN/COMMIT (~0.3 ms).
                    self._run(*steps[0])
                else:
                    con.begin()
                    try:
                        for step in steps:
                            self._run(*step)
                        con.commit()
                    except BaseException:
                        # DuckDB may have aborted the transaction already (a failed
                        # write, a full disk): its "no transaction is active" must not
                        # hide the error that caused it.
                        with suppress(duckdb.Error):
                            con.rollback()
                        raise
            except BaseException as exc:
                self._drop_appenders()
                if isinstance(exc, (duckdb.Error, StoreError)):
                    raise self._write_error(
                        exc, f"commit to {self.path} failed and was rolled back"
                    ) from exc
                raise
            self._secure_wal()

    def _write_error(self, exc: BaseException, failed: str) -> StoreError:
        """The StoreError to raise for a failed write: a full disk says so and what to do."""
        if history_file.is_disk_full(exc):
            return StoreError(history_file.disk_full_message(self.path))
        return StoreError(f"{failed}: {exc}")

    def _drop_appenders(self) -> None:
        # A failed append may leave rows buffered in its appender: empty and drop them
        # all, so that nothing leaks into the next batch; they are made again on use.
        for appender in self._appenders.values():
            with suppress(duckdb.Error):
                appender.clear()
        self._appenders.clear()

    def _run(self, kind: str, target: Any, params: Any, expected: int | None) -> None:
        if kind == "append":
            # Appenders skip SQL parsing and planning: 2 events commit in ~0.8 ms instead
            # of ~1.2 ms with INSERT ... SELECT unnest(...), 1,000 in ~3 ms instead of ~6.
            appender = self._appenders.get(target)
            if appender is None:
                columns = (
                    duckdb_sql.EVENT_TABLE_COLUMNS
                    if target == "events"
                    else duckdb_sql.EXECUTION_TABLE_COLUMNS
                )
                appender = self._appenders[target] = self._con.appender(target, columns=columns)
            appender.append_rows(params)
            appender.flush()
            return
        self._con.execute(target, params)
        if expected is not None:
            (changed,) = self._con.fetchone()
            if changed != expected:
                raise StoreError(f"{expected - changed} of the updated executions do not exist")

    # -- stored values ------------------------------------------------------------------

    def put_payload(self, stored: StoredValue) -> bool:
        """Store a large value once, in its own transaction on the calling thread (see
        :mod:`~nbconductor.storage.duckdb.payload_tables`); True when this call wrote it.

        Safe to call from any thread, concurrently with :meth:`commit`; storing a value
        that is there already (or being stored by another thread) is a cheap success.

        Raises:
            StoreError: the file is read-only or closed, or DuckDB refused the write.
        """
        if self.read_only:
            raise StoreError(f"{self.path} is open read-only; values are stored by the engine")
        lock = self._payload_locks[int(stored.hash[:4], 16) % len(self._payload_locks)]
        with lock, self._cursor() as cursor:
            try:
                wrote = payload_tables.put(cursor, stored, _PAYLOAD_CONFLICT)
            except duckdb.Error as exc:
                raise self._write_error(exc, f"storing a value in {self.path} failed") from exc
        self._secure_wal()
        return wrote

    def get_payload(self, digest: str) -> StoredValue:
        """The stored value ``digest``, its data as an Arrow table or a blob.

        Raises:
            PayloadError: nothing is stored under ``digest``.
        """
        with self._cursor() as cursor:
            return payload_tables.read(cursor, digest)

    def payload_preview(self, digest: str, rows: int = 5) -> tuple[list[str], list[tuple]] | None:
        """Column names and the first ``rows`` rows of a value stored as a table, read in
        SQL without loading the value (None when it is not stored as a table)."""
        with self._cursor() as cursor:
            return payload_tables.preview(cursor, digest, rows)

    def delete_unreferenced_payloads(
        self, *, dry_run: bool = False, older_than: float = payload_tables.GRACE_SECONDS
    ) -> dict[str, int]:
        """Delete the stored values no event, execution or schedule references any more
        (after a prune) and that were stored more than ``older_than`` seconds ago; see
        :func:`payload_tables.delete_unreferenced`.

        Returns:
            ``{"payloads": n, "bytes": b}`` deleted (or that would be, with ``dry_run``).
        """
        if self.read_only and not dry_run:
            raise StoreError(f"{self.path} is open read-only; open it read-write to prune")
        with self._write_lock, self._cursor() as cursor:
            return payload_tables.delete_unreferenced(
                cursor, dry_run=dry_run, older_than=older_than
            )

    # -- reading ------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the history store {self.path} is closed")

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        """A cursor of this thread's own for the duration of one read."""
        with self._state:
            self._check_open()
            cursor = self._idle.pop() if self._idle else self._root.cursor()
            self._busy.add(cursor)
        try:
            with short_switch_interval():  # see gil_handoff
                yield cursor
        except duckdb.Error as exc:
            if self._closed:
                raise StoreError(f"the history store {self.path} was closed") from exc
            raise StoreError(f"reading {self.path} failed: {exc}") from exc
        finally:
            with self._state:
                self._busy.discard(cursor)
                if self._closed:
                    cursor.close()
                    self._state.notify_all()
                else:
                    self._idle.append(cursor)

    def _query(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        with self._cursor() as cursor:
            try:
                return cursor.execute(sql, params).fetchall()
            except duckdb.Error as exc:
                raise history_file.read_error(exc, self.path) from exc

    def export_parquet(self, directory: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
        """Write ``<table>.parquet`` for each history table into ``directory``, from one
        consistent snapshot (see :mod:`nbconductor.storage.duckdb.parquet_export`).

        Returns:
            ``{table: {"path": ..., "rows": n}}``.

        Raises:
            StoreError: DuckDB could not write a file (its message is included).
        """
        with self._cursor() as cursor:
            return parquet_export.write_tables(cursor, self.path, directory)

    def sql(self, query: str, params: list[Any] | None = None) -> tuple[list[str], list[tuple]]:
        """Run one read-only query for a user (``nbconductor sql``, the socket).

        Only SELECT-like statements are accepted (including DESCRIBE, SHOW, SUMMARIZE
        and EXPLAIN), and they run in a read-only transaction that is rolled back, so
        nothing a query does can change history.

        Returns:
            The column names and the rows.

        Raises:
            StoreError: The statement would write, there is not exactly one statement,
                or DuckDB rejected the query (its message is included).

        Example:
            >>> columns, rows = store.sql("SELECT status, count(*) FROM executions GROUP BY 1")
        """
        with self._cursor() as cursor:
            query = self._user_statement(cursor, query)
            cursor.execute("BEGIN TRANSACTION READ ONLY")
            try:
                cursor.execute(query, params)
                columns = [d[0] for d in cursor.description or ()]
                rows = cursor.fetchall()
            except duckdb.Error as exc:
                raise StoreError(f"query failed: {exc}") from exc
            finally:
                cursor.execute("ROLLBACK")
        return columns, rows

    def relation(self, query: str, params: list[Any] | None = None) -> HistoryRelation:
        """One read-only query for a user (``engine.sql``, ``%conductor sql``), as a lazy
        DuckDB relation: ``.df()``, ``.pl()``, ``.arrow()``, ``.fetchall()``.

        The relation has a connection of its own (a cursor of the readers' root), never
        the engine's writer, so the user's thread may run it while the engine commits;
        it runs when asked and sees what was committed by then. The query passes the
        same checks as :meth:`sql` (one statement that reads, history tables only), and
        the relation refuses the methods that would write (see
        :class:`~nbconductor.storage.duckdb.relation.HistoryRelation`).

        Raises:
            StoreError: as :meth:`sql`; DuckDB's message when the query does not bind.
        """
        with self._state:
            self._check_open()
            cursor = self._root.cursor()
        try:
            query = self._user_statement(cursor, query)
            return HistoryRelation(cursor.sql(query, params=params))
        except duckdb.Error as exc:
            cursor.close()
            raise StoreError(f"query failed: {exc}") from exc
        except BaseException:
            cursor.close()
            raise

    def _user_statement(self, cursor: Any, query: str) -> str:
        try:
            statements = cursor.extract_statements(query)
        except duckdb.Error as exc:
            raise StoreError(f"cannot run this query: {exc}") from exc
        return check_user_statement(cursor, query, statements)

    # -- pruning ------------------------------------------------------------------------

    def prune(
        self,
        closed_before: datetime,
        *,
        dry_run: bool = False,
        limit: int | None = None,
        batch: int = pruning.PRUNE_BATCH,
        reclaim: bool = True,
    ) -> PruneReport:
        """Delete closed executions (closed before ``closed_before``) with their events,
        whole families at a time (see :mod:`nbconductor.storage.retention`), and give
        the space back to the file (see :mod:`nbconductor.storage.duckdb.pruning`).

        Deletes run in transactions of about ``batch`` executions; the writer lock is
        released between them, so an engine's commits wait for one batch at most
        (DuckDB updates its indexes row by row: 0.5-1 ms per execution of 8 events,
        see benchmarks/bench_prune.py). A checkpoint then writes the file without the
        deleted rows: DuckDB reuses the freed blocks and truncates free ones at the
        file's end (VACUUM does not return space in DuckDB).

        Args:
            closed_before: aware (naive is UTC).
            dry_run: count, delete nothing.
            limit: at most about this many executions (whole families).
            batch: executions per transaction.
            reclaim: checkpoint afterwards.
        """
        if self.read_only and not dry_run:
            raise StoreError(f"{self.path} is open read-only; pruning writes the file")
        return pruning.prune(
            closed_before,
            dry_run=dry_run,
            limit=limit,
            batch=batch,
            reclaim=reclaim,
            query=self._query,
            delete=self._delete,
            collect_payloads=self._collect_unreferenced_payloads,
            checkpoint=self._checkpoint,
            file_bytes=self._file_bytes,
        )

    def _delete(self, ids: list[str]) -> int:
        """Delete these executions and their events in one transaction; the event count."""
        with self._write_lock, history_file.owner_only_files():
            self._check_open()
            con = self._con
            try:
                con.begin()
                try:
                    con.execute(
                        "DELETE FROM events WHERE execution_id IN (SELECT unnest($1::VARCHAR[]))",
                        [ids],
                    )
                    (events,) = con.fetchone()
                    con.execute(
                        "DELETE FROM executions WHERE id IN (SELECT unnest($1::VARCHAR[]))", [ids]
                    )
                    con.commit()
                except BaseException:
                    with suppress(duckdb.Error):
                        con.rollback()
                    raise
            except duckdb.Error as exc:
                raise self._write_error(
                    exc, f"pruning {self.path} failed and was rolled back"
                ) from exc
            self._secure_wal()
        return int(events)

    def _collect_unreferenced_payloads(self, doomed: list[str] | None = None) -> dict[str, int]:
        """Delete stored values no remaining event or execution refers to; what was freed.

        Runs after a prune's deletes, before its checkpoint. With ``doomed`` (a dry
        run), deletes nothing and counts what deleting those executions would free.
        """
        with self._write_lock, self._cursor() as cursor:
            return payload_tables.delete_unreferenced(
                cursor, dry_run=doomed is not None, older_than=self.payload_grace, without=doomed
            )

    def _checkpoint(self) -> None:
        # A plain CHECKPOINT fails while another connection's transaction runs (a user's
        # query): then DuckDB's own automatic checkpoint gives the space back later.
        with self._write_lock, history_file.owner_only_files():  # a new WAL is created
            self._check_open()
            with suppress(duckdb.Error):
                self._con.execute("CHECKPOINT")
            self._secure_wal()

    def _file_bytes(self) -> int | None:
        total = 0
        for name in (self.path, self._wal):
            with suppress(OSError):
                total += os.path.getsize(name)
        return total

    # -- closing ------------------------------------------------------------------------

    def close(self, *, timeout: float = 10.0) -> None:
        """Checkpoint and release the file; later calls raise StoreError.

        Reads still running are interrupted after ``timeout`` seconds. Idempotent.
        """
        with self._state:
            if self._closed:
                return
            self._closed = True
            for cursor in self._idle:
                cursor.close()
            self._idle.clear()
            if not self._state.wait_for(lambda: not self._busy, timeout):
                for cursor in list(self._busy):
                    cursor.interrupt()
                self._state.wait_for(lambda: not self._busy, timeout)
        with self._write_lock, history_file.owner_only_files():  # the closing checkpoint
            self._drop_appenders()
            try:
                if not self.read_only:
                    # The next open then has no WAL to replay (W5 in benchmarks/).
                    with suppress(duckdb.Error):  # a full disk: the WAL is replayed instead
                        self._con.execute("CHECKPOINT")
                self._root.close()
                self._con.close()
            finally:
                # Drop the objects too: a thread that outlives us (a hung task) may keep
                # this store reachable until exit, and DuckDB reports live objects then.
                self._root = self._con = None
                self._release()

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        state = " (closed)" if self._closed else ""
        return f"DuckDBStore({self.path!r}{mode}){state}"
