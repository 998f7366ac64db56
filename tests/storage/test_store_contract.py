"""The Store contract, writing and reading back: one suite, run against every Store
implementation (the ``store`` fixture); the queries are in test_store_queries.py."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta, timezone

import pytest
from storetools import T0, event, execution

from nbconductor.errors import StoreError
from nbconductor.storage.records import (
    Batch,
    DefinitionRecord,
    EventKind,
    EventRecord,
    ExecutionRecord,
    ExecutionUpdate,
    QueueRecord,
    ScheduleRecord,
    Status,
)
from nbconductor.storage.store import Store


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


def queue(name: str, spec: str = '{"concurrency":8}', minutes: int = 0) -> QueueRecord:
    return QueueRecord(name, spec, T0 + timedelta(minutes=minutes))


def test_queues_are_inserted_replaced_and_deleted(store):
    assert store.queues() == []
    store.commit(Batch(queues=[queue("llm"), queue("api")]))
    assert store.queues() == [queue("api"), queue("llm")]
    wider = queue("llm", '{"concurrency":16,"rate":"60/minute"}', minutes=5)
    store.commit(Batch(queues=[queue("llm", "{}"), wider], deleted_queues=["api", "unknown"]))
    assert store.queues() == [wider]
    assert store.queues()[0].updated_at.utcoffset() == timedelta(0)


def test_a_failed_batch_leaves_queues_alone(store):
    store.commit(Batch(new_executions=[execution("e")], queues=[queue("llm")]))
    with pytest.raises(StoreError):
        store.commit(
            Batch(new_executions=[execution("e")], queues=[queue("x")], deleted_queues=["llm"])
        )
    assert store.queues() == [queue("llm")]


def ended_attempt(seq: int, queue: str | None, started_min: int, kind=EventKind.TASK_COMPLETED):
    data = {"started_at": (T0 + timedelta(minutes=started_min)).isoformat(), "result": 1}
    if queue is not None:
        data["queue"] = queue
    at = T0 + timedelta(minutes=started_min, seconds=1)
    return replace(event("e", seq, kind), at=at, data=json.dumps(data), command=seq, attempt=1)


def test_queue_starts_are_the_start_times_of_ended_attempts_of_that_queue(store):
    store.commit(
        Batch(
            new_executions=[execution("e")],
            events=[
                ended_attempt(1, "llm", 0),
                ended_attempt(2, "llm", 5, EventKind.TASK_FAILED),
                ended_attempt(3, "other", 6),
                ended_attempt(4, None, 7),
                ended_attempt(5, "llm", 8),
            ],
        )
    )
    starts = store.queue_starts("llm", T0 + timedelta(minutes=1))
    assert starts == [T0 + timedelta(minutes=5), T0 + timedelta(minutes=8)]
    assert all(s.utcoffset() == timedelta(0) for s in starts)
    assert store.queue_starts("nothing", T0) == []


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
    "queues": lambda s: s.queues(),
    "queue_starts": lambda s: s.queue_starts("q", T0),
    "workflow_names": lambda s: s.workflow_names(),
    "created_span": lambda s: s.created_span(),
    "counts_over_time": lambda s: s.counts_over_time(60),
    "pending_timers": lambda s: s.pending_timers(),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_a_closed_store_refuses_calls(store, call):
    store.commit(Batch(new_executions=[execution("e")]))
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError):
        CALLS[call](store)
