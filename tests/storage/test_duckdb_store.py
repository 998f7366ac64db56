"""The DuckDB store on real files: durability, concurrency, and users' SQL."""

from __future__ import annotations

import gc
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from storetools import T0, Child, event, execution

from nbconductor.errors import StoreError
from nbconductor.storage.duckdb import schema
from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
from nbconductor.storage.records import (
    Batch,
    DefinitionRecord,
    EventKind,
    EventRecord,
    ExecutionFilter,
    ExecutionUpdate,
    Status,
)


@pytest.fixture
def store(path):
    """A DuckDB store (not the contract's store of each kind)."""
    s = DuckDBStore(path)
    yield s
    s.close()


# --- durability ------------------------------------------------------------------------


def test_everything_is_found_again_after_reopening(path):
    full = execution(
        "e1", status=Status.FAILED, input='{"args":[1],"kwargs":{}}', closed_at=T0 + timedelta(hours=2),
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
        assert history[0].at == datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def test_a_clean_close_leaves_no_wal_to_replay(path):
    with DuckDBStore(path) as store:
        for i in range(50):
            store.commit(Batch(new_executions=[execution(f"w{i}")], events=[event(f"w{i}", 1)]))
        assert Path(f"{path}.wal").exists()
    assert not Path(f"{path}.wal").exists()
    with DuckDBStore(path) as store:
        assert store.count_executions() == 50


def test_the_writer_runs_duckdb_with_one_thread_and_a_memory_limit(path):
    with DuckDBStore(path) as store:
        rows = store._query(  # the settings are not for users' queries to read
            "SELECT current_setting('threads'), current_setting('memory_limit'), "
            "current_setting('checkpoint_threshold')"
        )
    threads, memory, threshold = rows[0]
    assert threads == 1
    assert memory.startswith("122.") or memory.startswith("128")  # 128 MB, as DuckDB prints it
    assert threshold.startswith("3.") or threshold.startswith("4")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_the_writer_starts_no_duckdb_threads(path):
    # One DuckDB thread means the caller's; DuckDB's 8 I/O threads (async_threads) only
    # prefetch remote files, and would idle beside every engine.
    before = len(list(Path("/proc/self/task").iterdir()))
    with DuckDBStore(path) as store:
        store.commit(Batch(new_executions=[execution("e")], events=[event("e", 1)]))
        assert store.count_executions() == 1
        during = len(list(Path("/proc/self/task").iterdir()))
        assert store._query("SELECT current_setting('async_threads')") == [(0,)]
    assert during <= before


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
    store.commit(Batch(new_executions=[execution("a"), execution("b", status=Status.FAILED)]))
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


# --- reading one history among many ----------------------------------------------------


def test_load_history_reads_the_index_not_the_whole_table(path):
    # "AND seq > ?" beside the execution filter made DuckDB scan every row group: 13-16
    # ms per view refresh among 1M events instead of 1.5 ms.
    from nbconductor.storage.duckdb import sql as duckdb_sql

    s = DuckDBStore(path)
    ids = [f"e{i:06d}" for i in range(20_000)]
    s._con.execute(
        "INSERT INTO events SELECT id, seq, 'TaskCompleted', now(), seq, 'noop', 1, '{}' "
        "FROM (SELECT unnest($1::VARCHAR[]) AS id), range(1, 9) AS t(seq)",
        [ids],
    )
    s._con.execute("CHECKPOINT")
    plan = s._con.execute("EXPLAIN ANALYZE " + duckdb_sql.LOAD_HISTORY, ["e012345", 5]).fetchall()[
        0
    ][1]
    assert "Index Scan" in plan, plan
    assert [e.seq for e in s.load_history("e012345", after_seq=5)] == [6, 7, 8]
    assert [e.seq for e in s.load_history("e012345")] == list(range(1, 9))
    assert s.load_history("e999999") == []
    s.close()
