"""Opening a history file: its schema and migrations, the lock against a second writer,
private permissions, read-only mode."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import duckdb
import pytest
from storetools import Child, event, execution

from nbconductor._version import __version__
from nbconductor.errors import NotAHistoryFile, SchemaTooNew, StoreError, StoreLocked
from nbconductor.storage.duckdb import schema
from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
from nbconductor.storage.records import Batch


@pytest.fixture
def store(path):
    """A DuckDB store (not the contract's store of each kind)."""
    s = DuckDBStore(path)
    yield s
    s.close()


def mode(p: Path | str) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


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


# --- schema ----------------------------------------------------------------------------


def test_a_new_file_gets_the_schema_and_meta(store):
    _, rows = store.sql("SELECT key, value FROM meta ORDER BY key")
    assert dict(rows) == {
        "application": "nbconductor",
        "created_by": __version__,
        "schema_version": str(len(schema.MIGRATIONS)),
    }
    _, tables = store.sql("SELECT table_name FROM duckdb_tables() ORDER BY 1")
    assert [t for (t,) in tables] == [
        "definitions",
        "events",
        "executions",
        "meta",
        "payloads",
        "queues",
        "schedules",
    ]


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
    latest = len(schema.MIGRATIONS)
    with pytest.raises(StoreError, match=f"needs an upgrade to version {latest}"):
        DuckDBStore(path, read_only=True)  # a reader cannot upgrade the file
    with DuckDBStore(path) as store:
        version = store.sql("SELECT value FROM meta WHERE key = 'schema_version'")[1]
        assert version == [(str(latest),)]
        assert store.schedules() == []
        assert store.get_execution("e") is not None


def test_a_version_2_file_gains_the_queues_table(path, monkeypatch):
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:2])
    with DuckDBStore(path) as store:
        store.commit(Batch(new_executions=[execution("e")]))
    monkeypatch.undo()
    with DuckDBStore(path) as store:
        version = store.sql("SELECT value FROM meta WHERE key = 'schema_version'")[1]
        assert version == [(str(len(schema.MIGRATIONS)),)]
        assert store.queues() == []
        assert store.get_execution("e") is not None


def test_pl_a_version_3_file_gains_the_payload_tables(path, monkeypatch):
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:3])
    with DuckDBStore(path) as store:
        store.commit(Batch(new_executions=[execution("e")]))
    monkeypatch.undo()
    with DuckDBStore(path) as store:
        assert store.sql("SELECT count(*) FROM payloads")[1] == [(0,)]
        assert store.sql("SELECT count(*) FROM payload_refs")[1] == [(0,)]
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
