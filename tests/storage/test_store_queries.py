"""The Store contract, queries: listing, sorting and paging, workflow names, counts over
time, pending timers and export, run against every Store implementation (the ``store``
fixture), and the memory and DuckDB stores agreeing on random histories."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storetools import T0, event, execution

from nbconductor.errors import StoreError
from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
from nbconductor.storage.duckdb.parquet_export import EXPORTED_TABLES, export_parquet
from nbconductor.storage.memory import MemoryStore
from nbconductor.storage.records import (
    SORT_KEYS,
    Batch,
    EventKind,
    ExecutionFilter,
    ExecutionRecord,
    ExecutionUpdate,
    Status,
    TimerCounts,
)

UTC = UTC


# --- listing ---------------------------------------------------------------------------

WF_A, WF_B = "order", "refund"
DATA = [
    # id, workflow, status, minutes after T0, parent, tags
    ("a1", WF_A, Status.COMPLETED, 0, None, ["customer-1"]),
    ("a2", WF_A, Status.RUNNING, 1, None, ["customer-2", "vip"]),
    ("b1", WF_B, Status.FAILED, 2, "a2", []),
    ("b2", WF_B, Status.RUNNING, 3, "a2", ["customer-1"]),
    ("a3", WF_A, Status.TIMED_OUT, 4, None, ["batch-7"]),
    ("c1", WF_A, Status.RUNNING, 4, None, []),  # same created_at as a3: id breaks the tie
    ("c2", WF_B, Status.CANCELLED, 6, "a3", ["VIP"]),
]


# How long the closed ones ran, in minutes; the running ones run until NOW.
CLOSED_AFTER = {"a1": 10, "b1": 1, "a3": 5, "c2": 0.5}
NOW = T0 + timedelta(hours=1)


@pytest.fixture
def listed(store):
    store.commit(
        Batch(
            new_executions=[
                execution(
                    i, minutes=m, workflow=w, status=s, parent_id=p, tags=t,
                    closed_at=T0 + timedelta(minutes=m + CLOSED_AFTER[i])
                    if i in CLOSED_AFTER else None,
                )
                for i, w, s, m, p, t in DATA
            ]
        )
    )  # fmt: skip
    return store


def expected(pred, newest_first=True) -> list[str]:
    rows = [(m, i) for i, w, s, m, p, t in DATA if pred(i, w, s, m, p, t)]
    return [i for _, i in sorted(rows, reverse=newest_first)]


def has(text: str, tags: list[str]) -> bool:
    return any(text in tag for tag in tags)


FILTERS = {
    "all": (ExecutionFilter(), lambda *r: True),
    "one status": (
        ExecutionFilter(status=[Status.RUNNING]),
        lambda i, w, s, *r: s is Status.RUNNING,
    ),
    "two statuses": (
        ExecutionFilter(status=[Status.FAILED, Status.CANCELLED]),
        lambda i, w, s, *r: s in (Status.FAILED, Status.CANCELLED),
    ),
    "no status": (ExecutionFilter(status=[]), lambda *r: False),
    "workflow": (ExecutionFilter(workflow=WF_B), lambda i, w, *r: w == WF_B),
    "since": (ExecutionFilter(since=T0 + timedelta(minutes=3)), lambda i, w, s, m, *r: m >= 3),
    "until": (ExecutionFilter(until=T0 + timedelta(minutes=3)), lambda i, w, s, m, *r: m < 3),
    "since and until": (
        ExecutionFilter(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=4)),
        lambda i, w, s, m, *r: 1 <= m < 4,
    ),
    "parent": (ExecutionFilter(parent_id="a2"), lambda i, w, s, m, p, t: p == "a2"),
    "search id": (ExecutionFilter(search="2"), lambda i, *r: "2" in i or has("2", r[-1])),
    "search matches tags too": (
        ExecutionFilter(search="b"),
        lambda i, *r: "b" in i or has("b", r[-1]),
    ),
    "search tag": (ExecutionFilter(search="customer-1"), lambda i, *r: has("customer-1", r[-1])),
    "search is case sensitive": (ExecutionFilter(search="vip"), lambda i, *r: has("vip", r[-1])),
    "search id or tag": (
        ExecutionFilter(search="1"),
        lambda i, *r: "1" in i or has("1", r[-1]),
    ),
    "combined": (
        ExecutionFilter(workflow=WF_A, status=[Status.RUNNING], search="c"),
        lambda i, w, s, *r: w == WF_A and s is Status.RUNNING and ("c" in i or has("c", r[-1])),
    ),
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_list_and_count_filters(listed, name):
    f, pred = FILTERS[name]
    want = expected(pred)
    assert [r.id for r in listed.list_executions(f)] == want
    assert listed.count_executions(f) == len(want)
    oldest = replace(f, newest_first=False)
    assert [r.id for r in listed.list_executions(oldest)] == expected(pred, newest_first=False)


def test_list_pages_with_limit_and_offset(listed):
    everything = [r.id for r in listed.list_executions()]
    assert everything == ["c2", "c1", "a3", "b2", "b1", "a2", "a1"]
    pages = [
        [r.id for r in listed.list_executions(ExecutionFilter(limit=3, offset=o))]
        for o in (0, 3, 6, 9)
    ]
    assert pages == [everything[0:3], everything[3:6], everything[6:], []]
    assert [r.id for r in listed.list_executions(ExecutionFilter(offset=5))] == everything[5:]
    assert listed.list_executions(ExecutionFilter(limit=0)) == []
    assert listed.count_executions(ExecutionFilter(limit=2, offset=1)) == 7


def test_listed_records_are_complete(listed):
    (b1,) = listed.list_executions(ExecutionFilter(status=[Status.FAILED]))
    assert b1 == listed.get_execution("b1")
    assert b1.parent_id == "a2"


def test_open_executions_are_the_running_ones_oldest_first(listed):
    assert [r.id for r in listed.open_executions()] == ["a2", "b2", "c1"]


def test_open_executions_follow_updates(listed):
    listed.commit(Batch(updates=[ExecutionUpdate("b2", T0, status=Status.COMPLETED)]))
    assert [r.id for r in listed.open_executions()] == ["a2", "c1"]


# --- sorting ---------------------------------------------------------------------------

SORTED = {
    ("id", True): ["c2", "c1", "b2", "b1", "a3", "a2", "a1"],
    # Ties are broken by start time, then id, in the same direction.
    ("workflow", False): ["a1", "a2", "a3", "c1", "b1", "b2", "c2"],
    ("status", True): ["a3", "c1", "b2", "a2", "b1", "a1", "c2"],
    # Running ones count until NOW: a2 59 min, b2 57, c1 56; then a1 10, a3 5, b1 1, c2 0.5.
    ("duration", True): ["a2", "b2", "c1", "a1", "a3", "b1", "c2"],
    ("started", False): ["a1", "a2", "b1", "b2", "a3", "c1", "c2"],
}


@pytest.mark.parametrize(("sort", "newest_first"), list(SORTED))
def test_list_sorts_by_every_key_both_ways(listed, sort, newest_first):
    f = ExecutionFilter(sort=sort, newest_first=newest_first, now=NOW)
    want = SORTED[sort, newest_first]
    assert [r.id for r in listed.list_executions(f)] == want
    backwards = replace(f, newest_first=not newest_first)
    assert [r.id for r in listed.list_executions(backwards)] == want[::-1]


def test_a_sorted_list_is_filtered_and_paged(listed):
    f = ExecutionFilter(sort="duration", now=NOW, workflow=WF_A, limit=2, offset=1)
    assert [r.id for r in listed.list_executions(f)] == ["c1", "a1"]
    assert listed.count_executions(f) == 4


def test_duration_counts_running_executions_until_now(listed):
    early = ExecutionFilter(sort="duration", now=T0 + timedelta(minutes=7), limit=3)
    # At T0+7 min a2 has run 6 minutes, less than a1's 10.
    assert [r.id for r in listed.list_executions(early)] == ["a1", "a2", "a3"]


def test_an_unknown_sort_is_refused(listed):
    with pytest.raises(ValueError, match=r"'colour'.*started, id, workflow, status, duration"):
        listed.list_executions(ExecutionFilter(sort="colour"))


# --- names, spans and counts over time ---------------------------------------------------


def test_workflow_names_are_those_with_executions(store):
    assert store.workflow_names() == []
    store.commit(Batch(new_executions=[execution("x", workflow="zeta"), execution("y")]))
    store.commit(Batch(new_executions=[execution("z", workflow="alpha")]))
    assert store.workflow_names() == ["alpha", "order", "zeta"]


def test_created_span(listed):
    assert listed.created_span() == (T0, T0 + timedelta(minutes=6))
    assert listed.created_span(ExecutionFilter(workflow=WF_B)) == (
        T0 + timedelta(minutes=2), T0 + timedelta(minutes=6),
    )  # fmt: skip
    assert listed.created_span(ExecutionFilter(status=[])) is None
    low, high = listed.created_span()
    assert low.utcoffset() == high.utcoffset() == timedelta(0)


def test_created_span_of_an_empty_store(store):
    assert store.created_span() is None


def at(hour: int, minute: int) -> datetime:
    return T0.replace(hour=hour, minute=minute, second=0, microsecond=0)


def test_counts_over_time(listed):
    # T0 is 15:09:26; executions start 0-6 minutes later.
    assert listed.counts_over_time(300) == {
        at(15, 5): {Status.COMPLETED: 1},
        at(15, 10): {Status.RUNNING: 3, Status.FAILED: 1, Status.TIMED_OUT: 1},
        at(15, 15): {Status.CANCELLED: 1},
    }
    buckets = listed.counts_over_time(60)
    assert list(buckets) == sorted(buckets) and len(buckets) == 6
    assert all(b.utcoffset() == timedelta(0) for b in buckets)
    assert sum(sum(c.values()) for c in buckets.values()) == len(DATA)
    assert listed.counts_over_time(3600, ExecutionFilter(status=[Status.RUNNING])) == {
        at(15, 0): {Status.RUNNING: 3}
    }
    assert listed.counts_over_time(60, ExecutionFilter(status=[])) == {}


@pytest.mark.parametrize("width", [0, -60])
def test_counts_over_time_need_a_positive_width(listed, width):
    with pytest.raises(ValueError, match="positive"):
        listed.counts_over_time(width)


# --- pending timers --------------------------------------------------------------------


def timer(execution_id: str, seq: int, kind: EventKind, command: int, fire_in: float | None = None):
    data = "{}" if fire_in is None else json.dumps({"fire_at": T0.timestamp() + fire_in})
    return event(execution_id, seq, kind, command=command, data=data)


def test_pending_timers(store):
    assert store.pending_timers(T0) == TimerCounts(0, 0)
    closed = execution("closed", status=Status.COMPLETED)
    store.commit(Batch(new_executions=[execution("r"), closed]))
    store.commit(
        Batch(
            events=[
                timer("r", 1, EventKind.TIMER_STARTED, 1, fire_in=-60),  # due
                timer("r", 2, EventKind.TIMER_STARTED, 2, fire_in=3600),  # later
                timer("r", 3, EventKind.TIMER_STARTED, 3, fire_in=-60),
                timer("r", 4, EventKind.TIMER_FIRED, 3),
                timer("r", 5, EventKind.TIMER_STARTED, 4, fire_in=-60),
                timer("r", 6, EventKind.TIMER_CANCELLED, 4),
                timer("r", 7, EventKind.TIMER_STARTED, 5),  # no fire time: never due
                timer("closed", 1, EventKind.TIMER_STARTED, 1, fire_in=-60),
            ]
        )
    )
    assert store.pending_timers(T0) == TimerCounts(pending=3, due=1)
    assert store.pending_timers(T0 + timedelta(hours=2)) == TimerCounts(pending=3, due=2)
    assert store.pending_timers(T0.replace(tzinfo=None)) == TimerCounts(3, 1)  # naive: UTC
    assert store.pending_timers() == TimerCounts(3, 2)  # now: long after 2025
    store.commit(Batch(updates=[ExecutionUpdate("r", T0, status=Status.CANCELLED)]))
    assert store.pending_timers(T0) == TimerCounts(0, 0)


# --- export ----------------------------------------------------------------------------


def test_export_writes_every_table_or_says_it_cannot(listed, tmp_path):
    listed.commit(Batch(events=[event("a1", 1), event("a1", 2)]))
    target = tmp_path / "out" / "parquet"
    if isinstance(listed, MemoryStore):
        with pytest.raises(StoreError, match="only a DuckDB history file can"):
            export_parquet(listed, target)
        assert not target.exists()
        return
    tables = export_parquet(listed, target)
    assert list(tables) == list(EXPORTED_TABLES)
    assert {t: v["rows"] for t, v in tables.items()} == {
        "executions": len(DATA), "events": 2, "definitions": 0, "schedules": 0,
        "queues": 0, "payloads": 0,
    }  # fmt: skip
    path = tables["executions"]["path"]
    assert path == str(target / "executions.parquet")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(target).st_mode & 0o777 == 0o700
    # Read back by pyarrow: user SQL may not read files (read_parquet is refused).
    parquet = pytest.importorskip("pyarrow.parquet")
    ids = parquet.read_table(path).column("id").to_pylist()
    assert ids == ["a1", "a2", "b1", "b2", "a3", "c1", "c2"]
    assert sorted(p.name for p in target.iterdir()) == sorted(f"{t}.parquet" for t in tables)
    assert listed.export_parquet(target) == tables  # again: the files are replaced


def test_export_into_a_file_fails(store, tmp_path):
    target = tmp_path / "a-file"
    target.write_text("x")
    with pytest.raises(StoreError):
        store.export_parquet(target)
    assert target.read_text() == "x"


# --- both stores agree on random histories ---------------------------------------------

ids = st.sampled_from(["a", "b", "c", "d"])
moments = st.integers(0, 5).map(lambda m: T0 + timedelta(minutes=m))
texts = st.none() | st.sampled_from(["", "x", '"r"'])
new_executions = st.builds(
    ExecutionRecord,
    id=ids,
    workflow=st.sampled_from(["order", "refund"]),
    version=st.just("v1"),
    status=st.sampled_from(Status),
    created_at=moments,
    updated_at=moments,
    parent_id=st.none() | ids,
    tags=st.lists(st.sampled_from(["vip", "b-tag", "x"]), max_size=2),
)
updates = st.builds(
    ExecutionUpdate,
    id=ids,
    updated_at=moments,
    status=st.none() | st.sampled_from(Status),
    closed_at=st.none() | moments,
    result=texts.filter(lambda t: t != ""),
    condition=texts,
)
timer_kinds = st.sampled_from(
    [EventKind.TASK_COMPLETED, EventKind.TIMER_STARTED, EventKind.TIMER_FIRED,
     EventKind.TIMER_CANCELLED]
)  # fmt: skip
timer_data = st.sampled_from(
    ["{}", '{"fire_at": "soon"}']
    + [json.dumps({"fire_at": T0.timestamp() + s}) for s in (-60, 0, 90, 400)]
)
batches = st.builds(
    Batch,
    new_executions=st.lists(new_executions, max_size=2),
    updates=st.lists(updates, max_size=2),
    events=st.lists(
        st.builds(
            event, ids, st.just(0), kind=timer_kinds, command=st.integers(1, 2), data=timer_data
        ),
        max_size=3,
    ),  # seqs are set below
)
filters = st.builds(
    ExecutionFilter,
    status=st.none() | st.lists(st.sampled_from(Status), max_size=2),
    workflow=st.none() | st.just("order"),
    since=st.none() | moments,
    parent_id=st.none() | ids,
    search=st.none() | st.sampled_from(["a", "b", "vip"]),
    limit=st.none() | st.integers(0, 3),
    offset=st.integers(0, 2),
    newest_first=st.booleans(),
    sort=st.sampled_from(SORT_KEYS),
    now=moments,
)


@settings(max_examples=40, deadline=None)
@given(st.lists(batches, min_size=1, max_size=6), st.lists(filters, min_size=1, max_size=4))
def test_memory_and_duckdb_stores_agree(batch_list, filter_list):
    next_seq: dict[str, int] = {}
    for n, batch in enumerate(batch_list):
        for ev in batch.events:  # unique seqs, as the engine guarantees
            ev.seq = next_seq[ev.execution_id] = next_seq.get(ev.execution_id, 0) + 1
        if n % 2:
            batch.events.reverse()  # "in seq order" holds whatever the commit order
    with tempfile.TemporaryDirectory() as tmp:
        stores = [MemoryStore(), DuckDBStore(Path(tmp) / "h.duckdb")]
        try:
            for batch in batch_list:
                outcomes = []
                for s in stores:
                    try:
                        s.commit(batch)
                        outcomes.append("ok")
                    except StoreError:
                        outcomes.append("failed")
                assert outcomes[0] == outcomes[1], batch
            memory, duck = stores
            for f in filter_list:
                assert memory.list_executions(f) == duck.list_executions(f)
                assert memory.count_executions(f) == duck.count_executions(f)
                assert memory.created_span(f) == duck.created_span(f)
                for width in (60, 150.5):
                    assert memory.counts_over_time(width, f) == duck.counts_over_time(width, f)
                assert memory.pending_timers(f.now) == duck.pending_timers(f.now)
            assert memory.workflow_names() == duck.workflow_names()
            assert memory.open_executions() == duck.open_executions()
            assert memory.counts_by_status() == duck.counts_by_status()
            assert memory.histories(list("abcd")) == duck.histories(list("abcd"))
        finally:
            for s in stores:
                s.close()
