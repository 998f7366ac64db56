"""The DuckDB store on real files: durability, schema, locking, permissions, concurrency."""

from __future__ import annotations

import gc
import os
import selectors
import stat
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from nbconductor._version import __version__
from nbconductor.errors import NotAHistoryFile, SchemaTooNew, StoreError, StoreLocked
from nbconductor.storage.duckdb import schema
from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
from nbconductor.storage.records import (
    Batch,
    DefinitionRecord,
    EventKind,
    EventRecord,
    ExecutionFilter,
    ExecutionRecord,
    ExecutionUpdate,
    Status,
)

T0 = datetime(2025, 3, 14, 15, 9, 26, 535897, tzinfo=timezone.utc)


def execution(id: str, status: Status = Status.RUNNING, **fields) -> ExecutionRecord:
    return ExecutionRecord(id, "order", "v1", status, T0, T0, **fields)


def event(execution_id: str, seq: int, data: str = "{}") -> EventRecord:
    return EventRecord(execution_id, seq, EventKind.TASK_COMPLETED, T0, name="t", data=data)


@pytest.fixture
def path(tmp_path) -> Path:
    return tmp_path / "history.duckdb"


@pytest.fixture
def store(path):
    s = DuckDBStore(path)
    yield s
    s.close()


def mode(p: Path | str) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


# --- subprocesses ----------------------------------------------------------------------


class Child:
    """A Python subprocess that reports progress line by line on stdout."""

    def __init__(self, code: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.pid = self.proc.pid

    def expect(self, line: str, timeout: float = 60.0) -> None:
        """Wait (with a deadline) until the child prints ``line``."""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if sel.select(timeout=deadline - time.monotonic()):
                    got = self.proc.stdout.readline()
                    if got.strip() == line:
                        return
                    if not got:
                        break
        self.proc.kill()
        _, err = self.proc.communicate()
        raise AssertionError(f"child did not print {line!r}; stderr:\n{err}")

    def finish(self) -> None:
        if self.proc.poll() is None:
            self.proc.communicate("done\n", timeout=60)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.communicate(timeout=60)
        assert self.proc.returncode == -9


HOLDER = """
    import sys
    from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
    store = DuckDBStore(sys.argv[1], read_only=sys.argv[2] == "ro")
    print("ready", flush=True)
    sys.stdin.readline()
    store.close()
"""


@pytest.fixture
def holder(path):
    DuckDBStore(path).close()  # an initialised file
    children: list[Child] = []

    def start(how: str = "rw") -> Child:
        child = Child(HOLDER, str(path), how)
        child.expect("ready")
        children.append(child)
        return child

    yield start
    for child in children:
        child.finish()


# --- durability ------------------------------------------------------------------------


def test_everything_is_found_again_after_reopening(path):
    full = execution(
        "e1", Status.FAILED, input='{"args":[1],"kwargs":{}}', closed_at=T0 + timedelta(hours=2),
        result=None, error='{"type":"KeyError"}', parent_id="p", origin_id="o",
        tags=["a", "b"], condition="blocked",
    )  # fmt: skip
    events = [event("e1", i, data=f'{{"i":{i}}}') for i in range(1, 4)]
    definition = DefinitionRecord("order", "workflow", "v1", "async def order(): ...", T0)
    with DuckDBStore(path) as store:
        store.commit(Batch(new_executions=[full, execution("e2")], events=events))
        store.commit(Batch(definitions=[definition]))
        store.commit(Batch(updates=[ExecutionUpdate("e2", T0, status=Status.COMPLETED)]))
    with DuckDBStore(path) as store:
        assert store.get_execution("e1") == full
        assert store.get_execution("e2").status is Status.COMPLETED
        assert store.load_history("e1") == events
        assert store.definitions() == [definition]
        assert [r.id for r in store.list_executions()] == ["e2", "e1"]
        assert store.counts_by_status() == {Status.FAILED: 1, Status.COMPLETED: 1}


KILLED = """
    import sys
    from datetime import datetime, timezone
    from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
    from nbconductor.storage.records import Batch, EventKind, EventRecord, ExecutionRecord, Status
    now = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    store = DuckDBStore(sys.argv[1])
    for i in range(3):
        store.commit(Batch(
            new_executions=[ExecutionRecord(f"e{i}", "wf", "v1", Status.RUNNING, now, now)],
            events=[EventRecord(f"e{i}", 1, EventKind.EXECUTION_STARTED, now, data='{"n":1}')],
        ))
    print("committed", flush=True)
    sys.stdin.readline()  # killed while waiting here, without close()
"""


def test_commits_survive_a_sigkilled_writer(path):
    child = Child(KILLED, str(path))
    child.expect("committed")
    child.kill()
    assert Path(f"{path}.wal").exists()  # nothing was checkpointed: recovery replays the WAL
    with DuckDBStore(path) as store:
        assert store.count_executions() == 3
        history = store.load_history("e2")
        assert [(e.seq, e.data) for e in history] == [(1, '{"n":1}')]
        assert history[0].at == datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)


def test_commit_errors_chain_the_duckdb_cause(store):
    store.commit(Batch(new_executions=[execution("e")]))
    with pytest.raises(StoreError, match="rolled back") as info:
        store.commit(Batch(new_executions=[execution("e")]))
    assert isinstance(info.value.__cause__, duckdb.Error)
    assert "e" in str(info.value)


def test_rows_of_a_failed_append_do_not_leak_into_the_next_commit(store):
    too_big = EventRecord("e", 2**40, EventKind.TASK_COMPLETED, T0)  # seq is an INTEGER
    with pytest.raises(StoreError):
        store.commit(Batch(events=[event("e", 1), too_big]))
    with pytest.raises(StoreError):
        store.commit(Batch(new_executions=[execution("x")], events=[event("x", 1), too_big]))
    store.commit(Batch(events=[event("e", 3)]))
    assert [e.seq for e in store.load_history("e")] == [3]
    assert store.get_execution("x") is None
    assert store.load_history("x") == []


def test_a_store_dropped_without_close_frees_its_path(path):
    store = DuckDBStore(path)
    store.commit(Batch(new_executions=[execution("e")]))
    del store
    gc.collect()
    with DuckDBStore(path) as again:
        assert again.count_executions() == 1


# --- schema ----------------------------------------------------------------------------


def test_a_new_file_gets_the_schema_and_meta(store):
    _, rows = store.sql("SELECT key, value FROM meta ORDER BY key")
    assert dict(rows) == {
        "application": "nbconductor",
        "created_by": __version__,
        "schema_version": str(len(schema.MIGRATIONS)),
    }
    _, tables = store.sql("SELECT table_name FROM duckdb_tables() ORDER BY 1")
    assert [t for (t,) in tables] == ["definitions", "events", "executions", "meta", "schedules"]


def test_payload_columns_answer_json_queries(store):
    store.commit(Batch(events=[event("e", 1, data='{"result":{"rows":[3,4]},"s":"\\u00e9"}')]))
    columns, rows = store.sql(
        "SELECT data->>'$.result.rows[1]' AS second, data->>'$.s' AS s FROM events"
    )
    assert columns == ["second", "s"]
    assert rows == [("4", "é")]


def test_migrations_run_forward_once(path, monkeypatch):
    DuckDBStore(path).close()
    ran: list[int] = []

    def add_notes(con) -> None:
        ran.append(2)
        con.execute("CREATE TABLE notes (text VARCHAR)")

    latest = len(schema.MIGRATIONS)
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, add_notes])
    with DuckDBStore(path) as store:
        version = store.sql("SELECT value FROM meta WHERE key = 'schema_version'")[1]
        assert version == [(str(latest + 1),)]
        assert store.sql("SELECT count(*) FROM notes")[1] == [(0,)]
    with DuckDBStore(path):
        pass
    assert ran == [2]


def test_a_version_1_file_gains_the_schedules_table(path, monkeypatch):
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
    with DuckDBStore(path) as store:
        store.commit(Batch(new_executions=[execution("e")]))
        assert store.sql("SELECT value FROM meta WHERE key = 'schema_version'")[1] == [("1",)]
    monkeypatch.undo()
    with pytest.raises(StoreError, match="needs an upgrade to version 2"):
        DuckDBStore(path, read_only=True)  # a reader cannot upgrade the file
    with DuckDBStore(path) as store:
        assert store.sql("SELECT value FROM meta WHERE key = 'schema_version'")[1] == [("2",)]
        assert store.schedules() == []
        assert store.get_execution("e") is not None


def test_a_failed_migration_changes_nothing(path, monkeypatch):
    DuckDBStore(path).close()

    def broken(con) -> None:
        con.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("bug in migration")

    latest = len(schema.MIGRATIONS)
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, broken])
    with pytest.raises(StoreError, match=f"schema version {latest + 1}") as info:
        DuckDBStore(path)
    assert "bug in migration" in str(info.value)
    monkeypatch.undo()
    with DuckDBStore(path) as store:  # the failed open released the file
        version = store.sql("SELECT value FROM meta WHERE key = 'schema_version'")[1]
        assert version == [(str(latest),)]
        assert store.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'half_done'")[
            1
        ] == [(0,)]


def test_a_newer_schema_is_refused(path):
    DuckDBStore(path).close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(SchemaTooNew) as info:
        DuckDBStore(path)
    message = str(info.value)
    assert "version 99" in message
    assert f"up to {len(schema.MIGRATIONS)}" in message
    assert "upgrade nbconductor" in message
    with pytest.raises(SchemaTooNew):
        DuckDBStore(path, read_only=True)


def test_a_file_that_is_not_duckdb_is_refused(path):
    garbage = b"this is a CSV file, not a database\n" * 200
    path.write_bytes(garbage)
    with pytest.raises(NotAHistoryFile, match=str(path)):
        DuckDBStore(path)
    assert path.read_bytes() == garbage
    with DuckDBStore(path.with_name("fine.duckdb")):  # nothing stays locked
        pass


def test_another_duckdb_database_is_not_written_into(path):
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE people (name VARCHAR)")
    con.close()
    with pytest.raises(NotAHistoryFile, match="people"):
        DuckDBStore(path)
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT table_name FROM duckdb_tables()").fetchall() == [("people",)]
    con.close()


def test_a_foreign_meta_table_is_not_ours(path):
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE meta (key VARCHAR, value VARCHAR)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.close()
    with pytest.raises(NotAHistoryFile):
        DuckDBStore(path)


@pytest.mark.parametrize("kind", ["zero bytes", "empty duckdb"])
def test_an_empty_file_is_initialised(path, kind):
    if kind == "zero bytes":
        path.touch()
    else:
        duckdb.connect(str(path)).close()
    with DuckDBStore(path) as store:
        store.commit(Batch(new_executions=[execution("e")]))
    with DuckDBStore(path, read_only=True) as store:
        assert store.count_executions() == 1


# --- locking ---------------------------------------------------------------------------


@pytest.mark.parametrize("read_only", [False, True])
def test_a_file_held_by_another_process_names_its_pid(path, holder, read_only):
    child = holder("rw")
    with pytest.raises(StoreLocked) as info:
        DuckDBStore(path, read_only=read_only)
    message = str(info.value)
    assert f"process {child.pid} " in message
    assert "NBCONDUCTOR_DB" in message
    assert "close the other kernel" in message
    child.finish()
    with DuckDBStore(path, read_only=read_only):  # free again once the holder exits
        pass


def test_a_reader_in_another_process_keeps_writers_out_not_readers(path, holder):
    child = holder("ro")
    with pytest.raises(StoreLocked, match=f"process {child.pid} "):
        DuckDBStore(path)
    with DuckDBStore(path, read_only=True) as store:
        assert store.count_executions() == 0


def test_a_second_store_in_the_same_process_is_refused(path, tmp_path):
    first = DuckDBStore(path)
    link = tmp_path / "link"
    link.symlink_to(tmp_path, target_is_directory=True)
    for other in (path, link / path.name, (path.parent / "." / path.name)):
        with pytest.raises(StoreLocked, match="already open in this process"):
            DuckDBStore(other)
    with pytest.raises(StoreLocked):
        DuckDBStore(path, read_only=True)
    first.close()
    with DuckDBStore(link / path.name) as again:
        assert again.count_executions() == 0


# --- permissions -----------------------------------------------------------------------


def test_new_directory_and_files_are_private(tmp_path):
    path = tmp_path / "new" / "history.duckdb"
    with DuckDBStore(path) as store:
        store.commit(Batch(events=[event("e", 1)]))
        assert mode(path.parent) == 0o700
        assert mode(path) == 0o600
        assert mode(f"{path}.wal") == 0o600
        # Past the checkpoint threshold (16 MiB) the next commit checkpoints and DuckDB
        # deletes the WAL; the commit after that starts a new one with the umask's mode.
        big = "x" * 2048
        store.commit(Batch(events=[event("big", i, data=f'"{big}"') for i in range(1, 10_001)]))
        assert os.path.getsize(f"{path}.wal") > 2**24
        store.commit(Batch(events=[event("e", 2)]))
        store.commit(Batch(events=[event("e", 3)]))
        assert os.path.getsize(f"{path}.wal") < 2**20  # a new WAL
        assert mode(f"{path}.wal") == 0o600
    with DuckDBStore(path) as store:  # a reopened file's new WAL too
        store.commit(Batch(events=[event("e", 4)]))
        assert mode(f"{path}.wal") == 0o600
        assert mode(path) == 0o600


def test_an_existing_directory_keeps_its_permissions(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    with DuckDBStore(shared / "history.duckdb"):
        pass
    assert mode(shared) == 0o755
    assert mode(shared / "history.duckdb") == 0o600


# --- read-only mode --------------------------------------------------------------------


def test_read_only_stores_read_and_refuse_to_write(path):
    with DuckDBStore(path) as store:
        store.commit(Batch(new_executions=[execution("e")], events=[event("e", 1)]))
    with DuckDBStore(path, read_only=True) as reader, DuckDBStore(path, read_only=True) as other:
        assert reader.read_only
        assert reader.get_execution("e").id == "e"
        assert len(other.load_history("e")) == 1
        with pytest.raises(StoreError, match="read-only"):
            reader.commit(Batch(events=[event("e", 2)]))
        assert reader.sql("SELECT count(*) FROM events")[1] == [(1,)]
        with pytest.raises(StoreLocked):
            DuckDBStore(path)  # no writer while this process reads it


def test_read_only_on_a_missing_file_creates_nothing(tmp_path):
    missing = tmp_path / "nowhere" / "history.duckdb"
    with pytest.raises(NotAHistoryFile, match="no nbconductor history"):
        DuckDBStore(missing, read_only=True)
    assert not missing.parent.exists()


# --- concurrency -----------------------------------------------------------------------


@pytest.mark.slow
def test_readers_in_four_threads_while_one_thread_commits(store):
    batches = 2_000
    done = threading.Event()
    errors: list[BaseException] = []
    reads = [0] * 4

    def write() -> None:
        try:
            for i in range(batches):
                store.commit(
                    Batch(
                        new_executions=[execution(f"e{i:05d}")],
                        events=[event("hot", 2 * i + 1), event("hot", 2 * i + 2)],
                    )
                )
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def read(n: int) -> None:
        last_count = last_seq = 0
        try:
            while not done.is_set():
                count = store.count_executions()
                # Incremental, as a live view reads: only the events it has not seen.
                new = [e.seq for e in store.load_history("hot", after_seq=last_seq)]
                page = store.list_executions(ExecutionFilter(limit=5))
                assert count >= last_count, "executions disappeared"
                assert new == list(range(last_seq + 1, last_seq + 1 + len(new))), "gap"
                assert len(new) % 2 == 0, "saw half a batch"
                assert len(page) >= min(5, count)  # read after the count: never fewer
                last_count = count
                last_seq += len(new)
                reads[n] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=write))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=150)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert all(n > 0 for n in reads), reads
    assert store.count_executions() == batches
    assert len(store.load_history("hot")) == 2 * batches


def test_close_lets_a_running_read_finish(store):
    store.commit(Batch(events=[event("e", i) for i in range(1, 201)]))
    holding, release = threading.Event(), threading.Event()
    outcome: list[object] = []

    def read() -> None:
        try:
            with store._cursor() as cursor:  # white box: a read that is under way
                holding.set()
                assert release.wait(60)
                outcome.append(cursor.execute("SELECT count(*) FROM events").fetchall())
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read)
    closer = threading.Thread(target=store.close)
    reader.start()
    assert holding.wait(60)
    closer.start()
    deadline = time.monotonic() + 60
    while not store._closed and time.monotonic() < deadline:
        closer.join(0.01)
    assert store._closed
    assert closer.is_alive()  # close() waits for the read
    release.set()
    reader.join(60)
    closer.join(60)
    assert outcome == [[(200,)]]
    with pytest.raises(StoreError, match="closed"):
        store.count_executions()


# --- sql -------------------------------------------------------------------------------


def test_sql_runs_selects_with_parameters(store):
    store.commit(Batch(new_executions=[execution("a"), execution("b", Status.FAILED)]))
    columns, rows = store.sql(
        "SELECT id, status FROM executions WHERE status = ? ORDER BY id", ["failed"]
    )
    assert (columns, rows) == (["id", "status"], [("b", "failed")])
    assert store.sql("DESCRIBE events")[1][0][0] == "execution_id"
    assert store.sql("EXPLAIN SELECT * FROM events")[0]


@pytest.mark.parametrize(
    "query",
    [
        "INSERT INTO executions (id) VALUES ('x')",
        "DELETE FROM events",
        "UPDATE executions SET status = 'failed'",
        "DROP TABLE events",
        "CREATE TABLE mine (x INTEGER)",
        "ALTER TABLE events ADD COLUMN y INTEGER",
        "COPY events TO 'out.csv'",
        "ATTACH 'other.duckdb' AS other",
        "CHECKPOINT",
        "SET threads = 1",
        "SELECT 1; DELETE FROM events",
        "EXPLAIN ANALYZE DELETE FROM events",  # passes the statement check; the transaction stops it
    ],
)
def test_sql_refuses_writes(store, query, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store.commit(Batch(new_executions=[execution("a")], events=[event("a", 1)]))
    tables = store.sql("SELECT table_name, column_count FROM duckdb_tables() ORDER BY 1")
    with pytest.raises(StoreError):
        store.sql(query)
    assert store.count_executions() == 1
    assert len(store.load_history("a")) == 1
    assert store.sql("SELECT table_name, column_count FROM duckdb_tables() ORDER BY 1") == tables
    assert not (tmp_path / "out.csv").exists()
    assert store.sql("SELECT 42")[1] == [(42,)]  # the cursor is usable afterwards


def test_sql_reports_query_errors(store):
    with pytest.raises(StoreError, match="no_such_table"):
        store.sql("SELECT * FROM no_such_table")
    with pytest.raises(StoreError):
        store.sql("SELEC 1")


def test_only_the_duckdb_store_imports_duckdb():
    package = Path(schema.__file__).parents[2]
    importers = sorted(
        str(p.relative_to(package))
        for p in package.rglob("*.py")
        if any(
            line.strip().startswith(("import duckdb", "from duckdb"))
            for line in p.read_text().splitlines()
        )
    )
    assert importers == ["storage/duckdb/duckdb_store.py"]
