"""The DuckDB store's relations for users (``engine.sql``) and the space pruning gives
back to the file."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from storetools import T0, event, execution

from nbconductor.errors import StoreError
from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
from nbconductor.storage.memory import MemoryStore
from nbconductor.storage.records import Batch, Status


@pytest.fixture
def store(path):
    s = DuckDBStore(path)
    yield s
    s.close()


def test_sp_relation_turns_into_pandas_polars_arrow_and_rows(store):
    store.commit(Batch(new_executions=[execution("a"), execution("b", status=Status.FAILED)]))
    rel = store.relation(
        "SELECT id, status FROM executions WHERE status = ? ORDER BY id", ["failed"]
    )
    assert rel.columns == ["id", "status"]
    assert rel.fetchall() == [("b", "failed")]
    assert rel.df().to_dict("records") == [{"id": "b", "status": "failed"}]
    assert rel.pl().to_dicts() == [{"id": "b", "status": "failed"}]
    assert rel.arrow().read_all().to_pylist() == [{"id": "b", "status": "failed"}]
    assert rel.to_arrow_table().num_rows == 1
    derived = store.relation("SELECT id FROM executions").filter("id = 'a'")
    assert derived.fetchall() == [("a",)]


def test_sp_relation_shows_as_a_table_in_a_notebook(store):
    store.commit(Batch(new_executions=[execution("a")]))
    bundle = store.relation("SELECT id, workflow FROM executions")._repr_mimebundle_()
    assert "<table" in bundle["text/html"] and ">a<" in bundle["text/html"]
    assert "workflow" in bundle["text/plain"] and "order" in bundle["text/plain"]


def test_sp_relation_sees_commits_made_after_it_was_made(store):
    rel = store.relation("SELECT count(*) FROM executions")
    assert rel.fetchall() == [(0,)]
    store.commit(Batch(new_executions=[execution("a")]))
    assert rel.fetchall() == [(1,)]  # a relation runs its query again on each call


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM events",
        "INSERT INTO executions (id) VALUES ('x')",
        "DROP TABLE events",
        "EXPLAIN ANALYZE DELETE FROM events",
        "SELECT 1; DELETE FROM events",
        "SELECT * FROM read_text('/etc/hostname')",
        "CHECKPOINT",
    ],
)
def test_sp_relation_refuses_writes_and_outside_reads(store, query):
    store.commit(Batch(new_executions=[execution("a")], events=[event("a", 1)]))
    with pytest.raises(StoreError):
        store.relation(query)
    assert store.count_executions() == 1 and len(store.load_history("a")) == 1


@pytest.mark.parametrize(
    "write",
    [
        lambda rel: rel.query("t", "DELETE FROM events"),
        lambda rel: rel.insert_into("events"),
        lambda rel: rel.create("copy_of_events"),
        lambda rel: rel.filter("seq > 0").to_table("copy_of_events"),
    ],
)
def test_sp_relation_methods_that_write_are_refused(store, write):
    store.commit(Batch(new_executions=[execution("a")], events=[event("a", 1)]))
    rel = store.relation("SELECT * FROM events")
    with pytest.raises(StoreError, match="reads only"):
        write(rel)
    assert len(store.load_history("a")) == 1
    assert store.sql("SELECT count(*) FROM duckdb_tables()")[1] == [(6,)]


def test_sp_relations_run_on_user_threads_while_the_store_commits(store):
    # Each relation has its own connection: readers in threads never share the writer's.
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                rel = store.relation("SELECT count(*) FROM events")
                ((n,),) = rel.fetchall()
                assert n >= 0
                rel.df()
        except BaseException as exc:  # reported below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    for i in range(200):
        store.commit(Batch(new_executions=[execution(f"e{i}")], events=[event(f"e{i}", 1)]))
    stop.set()
    for t in readers:
        t.join(timeout=30)
    assert not errors
    assert store.relation("SELECT count(*) FROM events").fetchall() == [(200,)]


def test_sp_relation_of_a_closed_store_fails_clearly(path):
    s = DuckDBStore(path)
    rel = s.relation("SELECT 1")
    s.close()
    with pytest.raises(Exception, match="closed"):
        rel.fetchall()
    with pytest.raises(StoreError, match="closed"):
        s.relation("SELECT 1")


def test_sp_memory_store_says_sql_needs_a_history_file():
    with pytest.raises(StoreError, match=r"Engine\('history.duckdb'\)"):
        MemoryStore().relation("SELECT 1")


def _fill(store, first: int, n: int) -> None:
    at = T0 + timedelta(days=1)
    for start in range(first, first + n, 500):
        records = [
            execution(f"e{i}", status=Status.COMPLETED, closed_at=at, input=f'"{i:0>300}"')
            for i in range(start, start + 500)
        ]
        events = [
            event(r.id, seq, data=f'{{"pad": "{seq}{r.id:x>300}"}}')
            for r in records
            for seq in (1, 2, 3)
        ]
        store.commit(Batch(new_executions=records, events=events))


def test_sp_pruning_gives_space_back_to_the_file(store):
    # DuckDB's checkpoint frees the deleted rows' blocks for reuse (it truncates the
    # file only when the free blocks are at its end): after a prune, as much history
    # again fits in the same file, where without the prune the file doubles.
    _fill(store, 0, 6000)
    store.commit(Batch(new_executions=[execution("open")]))
    store._checkpoint()
    full = store._file_bytes()
    report = store.prune(T0 + timedelta(days=30))
    assert (report.executions, report.events) == (6000, 18000)
    assert report.bytes_before == full and report.bytes_after is not None
    assert store.count_executions() == 1
    _fill(store, 10_000, 6000)
    store._checkpoint()
    assert store._file_bytes() < full * 1.35, (full, report.bytes_after, store._file_bytes())
    _fill(store, 20_000, 6000)  # the contrast: no prune, the file grows by a full share
    store._checkpoint()
    grown = store._file_bytes()
    assert grown > full * 1.6, (full, grown)
    store.close()
    with DuckDBStore(store.path) as again:  # the file is whole
        assert again.count_executions() == 12_001


def test_sp_read_only_store_refuses_to_prune(path):
    DuckDBStore(path).close()
    with DuckDBStore(path, read_only=True) as ro, pytest.raises(StoreError, match="read-only"):
        ro.prune(T0)
