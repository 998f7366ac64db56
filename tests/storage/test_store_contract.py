"""The Store contract: one suite, run against every Store implementation."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbconductor.errors import StoreError
from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
from nbconductor.storage.memory import MemoryStore
from nbconductor.storage.records import (
    Batch,
    DefinitionRecord,
    EventKind,
    EventRecord,
    ExecutionFilter,
    ExecutionRecord,
    ExecutionUpdate,
    ScheduleRecord,
    Status,
)
from nbconductor.storage.store import Store

T0 = datetime(2025, 3, 14, 15, 9, 26, 535897, tzinfo=timezone.utc)


@pytest.fixture(params=["memory", "duckdb"])
def store(request, tmp_path) -> Iterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else DuckDBStore(tmp_path / "h.duckdb")
    yield s
    s.close()


def execution(id: str, *, minutes: float = 0, **changes) -> ExecutionRecord:
    at = T0 + timedelta(minutes=minutes)
    rec = ExecutionRecord(id, "order", "v1", Status.RUNNING, at, at)
    return replace(rec, **changes)


def event(execution_id: str, seq: int, kind: EventKind = EventKind.TASK_COMPLETED, **changes):
    rec = EventRecord(execution_id, seq, kind, T0 + timedelta(seconds=seq))
    return replace(rec, **changes)


def test_store_satisfies_the_protocol(store):
    assert isinstance(store, Store)


def test_execution_round_trips_every_field(store):
    full = ExecutionRecord(
        id="exec-1",
        workflow="order",
        version="3f2a",
        status=Status.FAILED,
        created_at=T0,
        updated_at=T0 + timedelta(microseconds=1),
        input='{"args":["A-17",42.0],"kwargs":{"note":"é"}}',
        closed_at=T0 + timedelta(hours=1, microseconds=7),
        result='{"ok":false}',
        error='{"type":"ValueError","message":"boom"}',
        parent_id="parent-1",
        origin_id="origin-1",
        tags=["customer-9", "vip"],
        condition="blocked: non-determinism",
    )
    minimal = execution("exec-2")
    store.commit(Batch(new_executions=[full, minimal]))
    got = store.get_execution("exec-1")
    assert got == full
    assert got.created_at.utcoffset() == timedelta(0)
    assert got.closed_at.microsecond == (T0.microsecond + 7) % 1_000_000
    assert store.get_execution("exec-2") == minimal
    assert store.get_execution("exec-2").tags == []
    assert store.get_execution("missing") is None


def test_aware_timestamps_in_other_zones_come_back_as_the_same_instant(store):
    paris = timezone(timedelta(hours=1))
    rec = execution("e", created_at=T0.astimezone(paris), updated_at=T0.astimezone(paris))
    store.commit(Batch(new_executions=[rec]))
    got = store.get_execution("e")
    assert got.created_at == T0
    assert got.created_at.utcoffset() in (timedelta(0), timedelta(hours=1))


def test_event_round_trips_every_field(store):
    store.commit(Batch(new_executions=[execution("e")]))
    full = EventRecord(
        "e", 1, EventKind.TASK_FAILED, T0, command=4, name="charge", attempt=2,
        data='{"error":{"type":"TimeoutError"},"retry":true}',
    )  # fmt: skip
    bare = EventRecord("e", 2, EventKind.SIGNAL_RECEIVED, T0 + timedelta(microseconds=1))
    store.commit(Batch(events=[full, bare]))
    assert store.load_history("e") == [full, bare]
    assert store.load_history("e")[0].at.utcoffset() == timedelta(0)


def test_every_event_kind_round_trips(store):
    events = [event("e", i, kind) for i, kind in enumerate(EventKind, start=1)]
    store.commit(Batch(events=events))
    assert [e.kind for e in store.load_history("e")] == list(EventKind)


def test_every_status_round_trips_and_is_counted(store):
    recs = [execution(f"e-{s.value}", status=s) for s in Status]
    recs.append(execution("e-extra", status=Status.COMPLETED))
    store.commit(Batch(new_executions=recs))
    assert store.counts_by_status() == {s: (2 if s is Status.COMPLETED else 1) for s in Status}
    assert {store.get_execution(r.id).status for r in recs} == set(Status)


def test_update_changes_only_the_given_fields(store):
    store.commit(Batch(new_executions=[execution("e", condition="waiting", tags=["a"])]))
    later = T0 + timedelta(minutes=5)
    store.commit(
        Batch(
            updates=[
                ExecutionUpdate(
                    "e", later, status=Status.COMPLETED, closed_at=later, result='"done"',
                    version="v2",
                )
            ]
        )
    )  # fmt: skip
    got = store.get_execution("e")
    assert (got.status, got.closed_at, got.result, got.version) == (
        Status.COMPLETED, later, '"done"', "v2",
    )  # fmt: skip
    assert got.updated_at == later
    assert got.condition == "waiting"  # None means unchanged
    assert got.error is None
    assert got.tags == ["a"]
    assert got.created_at == T0


def test_update_condition_empty_string_clears_it(store):
    store.commit(Batch(new_executions=[execution("e")]))
    store.commit(Batch(updates=[ExecutionUpdate("e", T0, condition="blocked")]))
    assert store.get_execution("e").condition == "blocked"
    store.commit(Batch(updates=[ExecutionUpdate("e", T0, error='{"x":1}')]))
    assert store.get_execution("e").condition == "blocked"
    store.commit(Batch(updates=[ExecutionUpdate("e", T0, condition="")]))
    assert store.get_execution("e").condition is None
    assert store.get_execution("e").error == '{"x":1}'


def test_several_updates_in_one_batch_apply_in_order(store):
    store.commit(Batch(new_executions=[execution("a"), execution("b"), execution("c")]))
    t1, t2 = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)
    store.commit(
        Batch(
            updates=[
                ExecutionUpdate("a", t1, condition="blocked", result='"first"'),
                ExecutionUpdate("b", t1, status=Status.CANCELLED, closed_at=t1),
                ExecutionUpdate("a", t2, result='"second"', status=Status.COMPLETED),
                ExecutionUpdate("a", t2, condition=""),
            ]
        )
    )
    a, b, c = (store.get_execution(i) for i in "abc")
    assert (a.result, a.status, a.condition, a.updated_at) == (
        '"second"', Status.COMPLETED, None, t2,
    )  # fmt: skip
    assert (b.status, b.closed_at) == (Status.CANCELLED, t1)
    assert c == execution("c")


def test_a_new_execution_can_be_updated_in_the_same_batch(store):
    later = T0 + timedelta(seconds=3)
    store.commit(
        Batch(
            new_executions=[execution("e")],
            updates=[ExecutionUpdate("e", later, status=Status.COMPLETED, result="1")],
            events=[event("e", 1, EventKind.EXECUTION_STARTED)],
        )
    )
    got = store.get_execution("e")
    assert (got.status, got.result, got.updated_at) == (Status.COMPLETED, "1", later)
    assert len(store.load_history("e")) == 1


def test_a_failed_batch_leaves_nothing_behind(store):
    store.commit(Batch(new_executions=[execution("old")], events=[event("old", 1)]))
    bad = Batch(
        new_executions=[execution("new"), execution("old")],  # "old" exists already
        updates=[ExecutionUpdate("old", T0, status=Status.FAILED)],
        events=[event("new", 1), event("old", 2)],
        definitions=[DefinitionRecord("order", "workflow", "v1", "src", T0)],
    )
    with pytest.raises(StoreError):
        store.commit(bad)
    assert store.get_execution("new") is None
    assert store.get_execution("old").status is Status.RUNNING
    assert [e.seq for e in store.load_history("old")] == [1]
    assert store.load_history("new") == []
    assert store.definitions() == []
    assert store.count_executions() == 1
    # The store still works after the failure.
    store.commit(Batch(new_executions=[execution("new")], events=[event("new", 1)]))
    assert store.count_executions() == 2


def test_a_duplicate_id_inside_one_batch_fails(store):
    with pytest.raises(StoreError):
        store.commit(Batch(new_executions=[execution("x"), execution("x")]))
    assert store.count_executions() == 0


def test_updating_an_unknown_execution_fails_and_rolls_back(store):
    store.commit(Batch(new_executions=[execution("a")]))
    with pytest.raises(StoreError):
        store.commit(
            Batch(
                updates=[
                    ExecutionUpdate("a", T0, status=Status.COMPLETED),
                    ExecutionUpdate("ghost", T0, status=Status.COMPLETED),
                ],
                events=[event("a", 1)],
            )
        )
    assert store.get_execution("a").status is Status.RUNNING
    assert store.load_history("a") == []
    with pytest.raises(StoreError):
        store.commit(Batch(updates=[ExecutionUpdate("ghost", T0, status=Status.COMPLETED)]))


def test_an_empty_batch_is_a_no_op(store):
    store.commit(Batch())
    assert store.count_executions() == 0
    assert store.counts_by_status() == {}


def test_records_are_copied_in_and_out(store):
    rec = execution("e", tags=["a"])
    ev = event("e", 1)
    store.commit(Batch(new_executions=[rec], events=[ev]))
    rec.tags.append("changed-after-commit")
    rec.status = Status.FAILED
    ev.data = '{"changed":true}'
    got = store.get_execution("e")
    got.tags.append("changed-after-read")
    store.load_history("e")[0].data = '{"changed":true}'
    assert store.get_execution("e").tags == ["a"]
    assert store.get_execution("e").status is Status.RUNNING
    assert store.load_history("e")[0].data == "{}"


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


@pytest.fixture
def listed(store):
    store.commit(
        Batch(
            new_executions=[
                execution(i, minutes=m, workflow=w, status=s, parent_id=p, tags=t)
                for i, w, s, m, p, t in DATA
            ]
        )
    )
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


# --- histories and definitions ---------------------------------------------------------


def test_load_history_after_seq(store):
    store.commit(Batch(events=[event("e", i) for i in range(1, 6)] + [event("other", 1)]))
    store.commit(Batch(events=[event("e", 6)]))
    assert [e.seq for e in store.load_history("e")] == [1, 2, 3, 4, 5, 6]
    assert [e.seq for e in store.load_history("e", after_seq=4)] == [5, 6]
    assert store.load_history("e", after_seq=6) == []
    assert store.load_history("nobody") == []
    assert {e.execution_id for e in store.load_history("e")} == {"e"}


def test_histories_reads_several_executions(store):
    store.commit(Batch(events=[event("a", 1), event("b", 1), event("a", 2), event("c", 1)]))
    got = store.histories(["a", "b", "missing"])
    assert set(got) == {"a", "b", "missing"}
    assert [e.seq for e in got["a"]] == [1, 2]
    assert [e.execution_id for e in got["b"]] == ["b"]
    assert got["missing"] == []
    assert store.histories([]) == {}


def test_definitions_are_recorded_once_per_version_oldest_first(store):
    d1 = DefinitionRecord("order", "workflow", "v1", "async def order(): ...", T0)
    d2 = DefinitionRecord("charge", "task", "t1", "def charge(): ...", T0 + timedelta(seconds=1))
    d3 = DefinitionRecord(
        "order", "workflow", "v2", "async def order(): 2", T0 + timedelta(seconds=2)
    )
    store.commit(Batch(definitions=[d1, d2]))
    again = replace(d1, source="ignored", registered_at=T0 + timedelta(hours=1))
    store.commit(Batch(definitions=[d3, again, again]))
    assert store.definitions() == [d1, d2, d3]
    assert store.definitions("order") == [d1, d3]
    assert store.definitions("nothing") == []
    # The same name may be both a workflow and a task.
    same_name = DefinitionRecord(
        "order", "task", "v1", "def order(): ...", T0 + timedelta(seconds=3)
    )
    store.commit(Batch(definitions=[same_name]))
    assert store.definitions("order") == [d1, d3, same_name]


def schedule(id: str, state: str = '{"next":null}', minutes: int = 0) -> ScheduleRecord:
    return ScheduleRecord(id, "report", '{"every":"1h"}', state, T0 + timedelta(minutes=minutes))


def test_schedules_are_inserted_replaced_and_deleted(store):
    assert store.schedules() == []
    store.commit(Batch(schedules=[schedule("b"), schedule("a"), schedule("c")]))
    assert [s.id for s in store.schedules()] == ["a", "b", "c"]
    assert store.schedules()[0] == schedule("a")
    newer = schedule("b", state='{"next":"2025-03-15T00:00:00"}', minutes=9)
    store.commit(
        Batch(schedules=[schedule("b", state='{"skip":1}'), newer], deleted_schedules=["c"])
    )
    assert store.schedules() == [schedule("a"), newer]
    # Inserting and deleting the same schedule in one batch deletes it; unknown ids are fine.
    store.commit(Batch(schedules=[schedule("d")], deleted_schedules=["d", "never-existed"]))
    assert [s.id for s in store.schedules()] == ["a", "b"]
    assert store.schedules()[1].updated_at.utcoffset() == timedelta(0)


def test_a_failed_batch_leaves_schedules_alone(store):
    store.commit(Batch(new_executions=[execution("e")], schedules=[schedule("a")]))
    with pytest.raises(StoreError):
        store.commit(
            Batch(
                new_executions=[execution("e")],
                schedules=[schedule("a", state='{"changed":1}'), schedule("b")],
                deleted_schedules=["a"],
            )
        )
    assert store.schedules() == [schedule("a")]


# --- closing ---------------------------------------------------------------------------

CALLS = {
    "commit": lambda s: s.commit(Batch(new_executions=[execution("z")])),
    "commit empty": lambda s: s.commit(Batch()),
    "get_execution": lambda s: s.get_execution("e"),
    "list_executions": lambda s: s.list_executions(),
    "count_executions": lambda s: s.count_executions(),
    "open_executions": lambda s: s.open_executions(),
    "load_history": lambda s: s.load_history("e"),
    "histories": lambda s: s.histories(["e"]),
    "counts_by_status": lambda s: s.counts_by_status(),
    "definitions": lambda s: s.definitions(),
    "schedules": lambda s: s.schedules(),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_a_closed_store_refuses_calls(store, call):
    store.commit(Batch(new_executions=[execution("e")]))
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError):
        CALLS[call](store)


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
batches = st.builds(
    Batch,
    new_executions=st.lists(new_executions, max_size=2),
    updates=st.lists(updates, max_size=2),
    events=st.lists(st.builds(event, ids, st.just(0)), max_size=3),  # seqs are set below
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
            assert memory.open_executions() == duck.open_executions()
            assert memory.counts_by_status() == duck.counts_by_status()
            assert memory.histories(list("abcd")) == duck.histories(list("abcd"))
        finally:
            for s in stores:
                s.close()
