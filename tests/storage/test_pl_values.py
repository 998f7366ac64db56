"""Large values stored apart, by content hash: each kind round-trips through both stores.

Real DuckDB files under tmp_path and the memory store; the values go through the same
path the engine uses (capture, put_payload, get_payload, restore).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from nbconductor.errors import PayloadError
from nbconductor.storage import codec
from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
from nbconductor.storage.memory import MemoryStore
from nbconductor.storage.values import capture, restore


@pytest.fixture(params=["duckdb", "memory"])
def any_store(request, tmp_path):
    store = DuckDBStore(tmp_path / "values.duckdb") if request.param == "duckdb" else MemoryStore()
    yield store
    store.close()


def round_trip(store, value, limit: int = 64 * 1024):
    stored = capture(value, limit)
    assert stored is not None, f"{type(value)} was not captured"
    store.put_payload(stored)
    back = store.get_payload(stored.hash)
    return restore(back.kind, back.meta, table=back.table, blob=back.blob), stored


def rich_frame() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "n": [1, 2, 3],
            "maybe": pd.array([1, None, 3], dtype="Int64"),
            "x": [0.5, float("nan"), 2.5],
            "s": ["a", None, "ç"],
            "flag": [True, False, True],
            "size": pd.Categorical(["s", "m", "s"], categories=["s", "m", "l"], ordered=True),
            "when": pd.to_datetime(
                ["2024-03-31 01:59:59.123456789", "2024-03-31 03:00:00.000000000", None],
                format="ISO8601",
            ).tz_localize("Europe/Paris"),
            "naive": pd.to_datetime(
                ["2024-01-01 00:00:00", "2024-01-02 00:00:00.5", "2024-01-03 00:00:00"],
                format="ISO8601",
            ),
            "tags": [["a", "b"], [], None],
            "point": [{"x": 1, "y": 2.0}, {"x": 3, "y": None}, None],
        },
        index=pd.Index(["r1", "r2", "r3"], name="row"),
    )
    return frame


def test_pl_pandas_frame_round_trips_dtypes_nulls_index(any_store):
    frame = rich_frame()
    back, stored = round_trip(any_store, frame)
    assert stored.kind == "pandas" and stored.rows == 3
    pd.testing.assert_frame_equal(back, frame)
    assert back["size"].cat.ordered and list(back["size"].cat.categories) == ["s", "m", "l"]
    assert str(back["when"].dt.tz) == "Europe/Paris"
    assert back["when"].iloc[0].nanosecond == 789  # nanoseconds survive


def test_pl_pandas_frame_is_a_native_duckdb_table(tmp_path):
    with DuckDBStore(tmp_path / "native.duckdb") as store:
        stored = capture(rich_frame(), 1024)
        store.put_payload(stored)
        _, rows = store.sql(f"SELECT n, s, size FROM payload_{stored.hash} ORDER BY n")
        assert rows == [(1, "a", "s"), (2, None, "m"), (3, "ç", "s")]


def test_pl_empty_frames_and_range_index_round_trip(any_store):
    empty = pd.DataFrame({"a": pd.Series([], dtype="int64"), "b": pd.Series([], dtype="str")})
    back, _ = round_trip(any_store, empty)
    pd.testing.assert_frame_equal(back, empty)
    ranged = pd.DataFrame({"v": [1.0, 2.0]}, index=pd.RangeIndex(10, 14, 2))
    back, _ = round_trip(any_store, ranged)
    pd.testing.assert_frame_equal(back, ranged)
    multi = pd.DataFrame(
        {"v": [1, 2]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["k", "i"])
    )
    back, _ = round_trip(any_store, multi)
    pd.testing.assert_frame_equal(back, multi)


def test_pl_types_duckdb_cannot_hold_exactly_are_kept_as_arrow_ipc(any_store):
    frame = pd.DataFrame({"gap": pd.to_timedelta([1, 2], unit="s"), "Gap": [1, 2]})
    back, stored = round_trip(any_store, frame)
    assert stored.meta["format"] == "arrow-ipc"
    pd.testing.assert_frame_equal(back, frame)


def test_pl_polars_arrow_and_batches_round_trip(any_store):
    frame = pl.DataFrame(
        {
            "a": [1, None, 3],
            "s": ["x", "y", None],
            "l": [[1, 2], None, []],
            "c": pl.Series(["u", "v", "u"], dtype=pl.Categorical),
        }
    )
    back, stored = round_trip(any_store, frame)
    assert stored.kind == "polars" and isinstance(back, pl.DataFrame)
    assert back.equals(frame) and back.schema == frame.schema
    table = pa.table({"a": pa.array([1, 2], pa.int16()), "t": pa.array(["p", None])})
    back, _ = round_trip(any_store, table)
    assert back.equals(table) and back.schema == table.schema
    batch = table.to_batches()[0]
    back, stored = round_trip(any_store, batch)
    assert stored.kind == "batch" and isinstance(back, pa.RecordBatch) and back.equals(batch)
    empty_batch = pa.RecordBatch.from_pylist([], schema=table.schema)
    back, _ = round_trip(any_store, empty_batch)
    assert isinstance(back, pa.RecordBatch) and back.num_rows == 0 and back.schema == table.schema


def test_pl_numpy_arrays_keep_dtype_and_shape(any_store):
    cases = [
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.asfortranarray(np.arange(6, dtype=">i8").reshape(2, 3)),
        np.array([True, False]),
        np.array(5.0),
        np.zeros((0, 3), dtype=np.uint8),
        np.array([(1, 2.5), (3, 4.5)], dtype=[("id", "i4"), ("v", "f8")]),
        np.array(["2024-01-01", "NaT"], dtype="datetime64[ns]"),
    ]
    for array in cases:
        back, stored = round_trip(any_store, array)
        assert stored.kind == "numpy"
        assert back.dtype == array.dtype and back.shape == array.shape
        np.testing.assert_array_equal(back, array)
        back.flat[:1] = back.flat[:1]  # writable: a task may change what it was given
    assert capture(np.array([object()]), 0) is None  # Python objects: not data


def test_pl_large_bytes_and_text_round_trip_small_ones_stay_inline(any_store):
    blob = bytes(range(256)) * 400
    text = "naïve ☃ " * 20_000
    for value in (blob, bytearray(blob), text):
        back, _ = round_trip(any_store, value)
        assert back == value and type(back) is type(value)
    assert capture(b"small", 64 * 1024) is None
    assert capture("small", 64 * 1024) is None


def test_pl_the_same_content_hashes_the_same_however_chunked():
    frame = pd.DataFrame({"a": np.arange(1000), "s": [f"v{i}" for i in range(1000)]})
    table = pa.Table.from_pandas(frame)
    chunked = pa.concat_tables([table.slice(0, 300), table.slice(300)])
    assert chunked.column(0).num_chunks == 2
    assert capture(table, 0).hash == capture(chunked, 0).hash
    assert capture(frame, 0).hash == capture(frame.copy(), 0).hash
    changed = frame.copy()
    changed.loc[999, "a"] = -1
    assert capture(changed, 0).hash != capture(frame, 0).hash


def test_pl_a_value_is_stored_once_even_by_racing_threads(tmp_path):
    frame = pd.DataFrame({"a": np.arange(50_000), "b": np.random.default_rng(1).random(50_000)})
    with DuckDBStore(tmp_path / "race.duckdb") as store:
        stored = capture(frame, 0)
        wrote: list[bool] = []
        errors: list[BaseException] = []
        start = threading.Barrier(4)

        def put() -> None:
            try:
                start.wait(10)
                wrote.append(store.put_payload(capture(frame, 0)))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=put) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == [] and len(wrote) == 4 and wrote.count(True) == 1
        _, rows = store.sql("SELECT count(*) FROM payloads")
        assert rows == [(1,)]
        _, rows = store.sql(f"SELECT count(*) FROM payload_{stored.hash}")
        assert rows == [(50_000,)]


def test_pl_unreferenced_payloads_are_deleted_referenced_ones_kept(any_store):
    from nbconductor.engine.payload import Payloads

    payloads = Payloads(store=any_store)
    kept_text = payloads.encode_value(pd.DataFrame({"a": [1, 2]}), what="kept")
    orphan = capture(np.arange(10), 0)
    any_store.put_payload(orphan)

    from nbconductor.storage.records import Batch, EventKind, EventRecord, ExecutionRecord, Status

    now = datetime.now(UTC)
    any_store.commit(
        Batch(
            new_executions=[ExecutionRecord("e1", "wf", "v1", Status.RUNNING, now, now)],
            events=[
                EventRecord(
                    "e1", 1, EventKind.SIGNAL_RECEIVED, now, data=f'{{"payload":{kept_text}}}'
                )
            ],
        )
    )
    # Just stored: its event may not be appended yet, so the grace period keeps it.
    assert any_store.delete_unreferenced_payloads() == {"payloads": 0, "bytes": 0}
    assert any_store.delete_unreferenced_payloads(dry_run=True, older_than=0) == {
        "payloads": 1,
        "bytes": 80,
    }
    assert any_store.delete_unreferenced_payloads(older_than=0) == {"payloads": 1, "bytes": 80}
    with pytest.raises(PayloadError, match="not in this"):
        any_store.get_payload(orphan.hash)
    assert payloads.decode_value(kept_text)["a"].tolist() == [1, 2]
    assert any_store.delete_unreferenced_payloads(older_than=0) == {"payloads": 0, "bytes": 0}


def test_pl_readers_without_an_engine_see_a_preview_not_the_data():
    ref = capture(pd.DataFrame({"id": [1, 2, 3]}), 0).ref()
    value = codec.decode(json.dumps({"r": ref}))["r"]
    assert isinstance(value, codec.UnloadedValue)
    assert repr(value).startswith("<stored pandas DataFrame, 3 rows")
    assert "id: int64" in repr(value)


def test_an_export_carries_stored_values_and_the_documented_restore_brings_them_back(tmp_path):
    import duckdb

    from nbconductor.engine.engine import Engine

    frame = rich_frame()
    blob = b"\x00\x01" * 50_000
    with DuckDBStore(tmp_path / "h.duckdb") as store:
        for value in (frame, blob):
            store.put_payload(capture(value, 1024))
        tables = store.export_parquet(tmp_path / "backup")
    frame_hash, blob_hash = capture(frame, 1024).hash, capture(blob, 1024).hash
    assert tables["payloads"]["rows"] == 2
    assert tables[f"payload_{frame_hash}"]["rows"] == len(frame)
    assert f"payload_{blob_hash}" not in tables  # a blob travels inside payloads.parquet

    # The restore of docs/operations.md ("An export, while the engine runs").
    Engine(tmp_path / "restored.duckdb").stop()
    con = duckdb.connect(str(tmp_path / "restored.duckdb"))
    backup = tmp_path / "backup"
    for table in ("executions", "events", "definitions", "schedules", "queues", "payloads"):
        con.execute(f"INSERT INTO {table} SELECT * FROM read_parquet('{backup}/{table}.parquet')")
    for path in backup.glob("payload_*.parquet"):
        con.execute(f"CREATE TABLE {path.stem} AS SELECT * FROM read_parquet('{path}')")
    con.close()

    with DuckDBStore(tmp_path / "restored.duckdb", read_only=True) as restored:
        for value, digest in ((frame, frame_hash), (blob, blob_hash)):
            back = restored.get_payload(digest)
            again = restore(back.kind, back.meta, table=back.table, blob=back.blob)
            if isinstance(value, bytes):
                assert again == value
            else:
                pd.testing.assert_frame_equal(again, value)
