"""Schedules on the engine, driven by a virtual clock: no test waits for wall time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import nbconductor as nc
from nbconductor.engine.clock import VirtualClock
from nbconductor.engine.engine import Engine
from nbconductor.errors import ScheduleError, WorkflowNotRegistered
from nbconductor.storage.records import Status
from nbconductor.testing import advance, wait_for

T0 = datetime(2030, 1, 7, 0, 0, tzinfo=UTC)  # a Monday


def at(hours: float = 0, minutes: float = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(hours=hours, minutes=minutes, seconds=seconds)


@pytest.fixture
def clock():
    return VirtualClock(T0)


@pytest.fixture
def eng(clock, db_path):
    engine = Engine(db_path, clock=clock, make_default=False)
    yield engine
    engine.stop(grace=0)


@nc.workflow
async def report(region: str = "eu") -> str:
    return f"report {region}"


@nc.workflow
async def long_job() -> str:
    return await nc.signal("finish")


def runs(engine, schedule_id):
    return sorted(
        (r.id for r in engine.list(limit=None) if r.id.startswith(f"{schedule_id}@")),
    )


def test_cron_fires_in_its_zone_with_deterministic_ids(eng):
    eng.schedules.create("daily", report, cron="0 9 * * *", timezone="Europe/Paris", args=["fr"])
    info = eng.schedules.get("daily")
    assert info.next_fire == at(hours=8)  # 09:00 in Paris is 08:00 UTC in winter
    advance(eng, at(hours=7, minutes=59))
    assert runs(eng, "daily") == []
    advance(eng, at(hours=8, seconds=1))
    assert runs(eng, "daily") == ["daily@2030-01-07T08:00:00Z"]
    assert eng.get("daily@2030-01-07T08:00:00Z").result(timeout=10) == "report fr"
    assert eng.describe("daily@2030-01-07T08:00:00Z").tags == ["schedule:daily"]
    described = eng.schedules.describe("daily")
    assert described["last_runs"][0]["execution_id"] == "daily@2030-01-07T08:00:00Z"
    assert len(described["upcoming"]) == 5


def test_interval_schedule(eng):
    eng.schedules.create("every15", report, every="15 minutes")
    for minutes in (15, 30, 45):
        advance(eng, at(minutes=minutes))
    assert runs(eng, "every15") == [
        "every15@2030-01-07T00:15:00Z",
        "every15@2030-01-07T00:30:00Z",
        "every15@2030-01-07T00:45:00Z",
    ]


@pytest.mark.parametrize(
    ("policy", "expected_open", "expected_buffered"),
    [
        ("skip", 1, 0),
        ("buffer_one", 1, 1),
        ("buffer_all", 1, 2),
        ("allow_all", 3, 0),
    ],
)
def test_overlap_policies(eng, policy, expected_open, expected_buffered):
    eng.schedules.create(f"o-{policy}", long_job, every="1h", overlap=policy)
    for hour in (1, 2, 3):
        advance(eng, at(hours=hour))
    info = eng.schedules.get(f"o-{policy}")
    assert (len(info.open_runs), len(info.buffered)) == (expected_open, expected_buffered)
    if expected_buffered:
        first = info.open_runs[0]
        eng.signal(first, "finish", "done")
        wait_for(
            lambda: eng.schedules.get(f"o-{policy}").open_runs not in ((), (first,)),
            what="the buffered fire to start",
        )
        assert eng.schedules.get(f"o-{policy}").open_runs[0] == f"o-{policy}@2030-01-07T02:00:00Z"


def test_cancel_and_terminate_other(eng):
    eng.schedules.create("c", long_job, every="1h", overlap="cancel_other")
    eng.schedules.create("t", long_job, every="1h", overlap="terminate_other")
    advance(eng, at(hours=1))
    advance(eng, at(hours=2))
    assert eng.get("t@2030-01-07T01:00:00Z").status is Status.TERMINATED
    assert eng.get("t@2030-01-07T02:00:00Z").status is Status.RUNNING
    wait_for(lambda: eng.get("c@2030-01-07T01:00:00Z").status is Status.CANCELLED, what="cancel")
    wait_for(lambda: "c@2030-01-07T02:00:00Z" in runs(eng, "c"), what="the next run")


@pytest.mark.parametrize(
    ("catchup", "expected"),
    [
        ("none", []),
        ("latest", ["h@2030-01-07T05:00:00Z"]),
        ("all", [f"h@2030-01-07T0{h}:00:00Z" for h in range(1, 6)]),
    ],
)
def test_catch_up_after_downtime(clock, db_path, catchup, expected):
    engine = Engine(db_path, clock=clock, make_default=False)
    # allow_all: catch-up fires go through the overlap policy too, and with "skip" the
    # first caught-up run would still be open when the next one is considered.
    engine.schedules.create("h", report, every="1h", catchup=catchup, overlap="allow_all")
    engine.stop(grace=0)
    clock.advance_to(at(hours=5, minutes=30))  # the kernel was closed for 5.5 hours
    engine = Engine(db_path, clock=clock, make_default=False)
    try:
        assert runs(engine, "h") == expected
        assert engine.schedules.get("h").next_fire == at(hours=6)
    finally:
        engine.stop(grace=0)


def test_fire_is_idempotent_across_a_crash_before_the_state_was_saved(clock, db_path):
    engine = Engine(db_path, clock=clock, make_default=False)
    engine.schedules.create("idem", report, every="1h")
    saved = engine.store.schedules()[0]  # the state before the fire
    advance(engine, at(hours=1))
    assert runs(engine, "idem") == ["idem@2030-01-07T01:00:00Z"]
    engine.stop(grace=0)
    from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
    from nbconductor.storage.records import Batch

    store = DuckDBStore(db_path)  # put the old state back, as if the fire never committed
    store.commit(Batch(schedules=[saved]))
    store.close()
    engine = Engine(db_path, clock=clock, make_default=False)
    try:
        assert runs(engine, "idem") == ["idem@2030-01-07T01:00:00Z"]  # no duplicate
    finally:
        engine.stop(grace=0)


def test_pause_and_resume(eng):
    eng.schedules.create("p", report, every="1h")
    eng.schedules.pause("p", note="maintenance")
    assert eng.schedules.get("p").spec.note == "maintenance"
    assert eng.schedules.get("p").next_fire is None
    advance(eng, at(hours=3, minutes=30))
    assert runs(eng, "p") == []
    eng.schedules.resume("p")  # fires missed while paused are not caught up
    assert runs(eng, "p") == []
    advance(eng, at(hours=4))
    assert runs(eng, "p") == ["p@2030-01-07T04:00:00Z"]


def test_update_cron_while_a_run_is_open(eng):
    eng.schedules.create("u", long_job, cron="0 * * * *")
    advance(eng, at(hours=1))
    eng.schedules.update("u", cron="30 * * * *")
    assert eng.schedules.get("u").next_fire == at(hours=1, minutes=30)
    assert eng.schedules.get("u").open_runs == ("u@2030-01-07T01:00:00Z",)
    advance(eng, at(hours=1, minutes=30))
    assert eng.schedules.get("u").skipped == 1  # overlap=skip: the first run is still open


def test_trigger_now_and_delete(eng):
    eng.schedules.create("manual", report, every="1 day")
    h = eng.schedules.trigger_now("manual")
    assert h.result(timeout=10) == "report eu"
    eng.schedules.delete("manual")
    assert eng.schedules.list() == []
    assert eng.store.schedules() == []
    with pytest.raises(ScheduleError, match="no schedule with id 'manual'"):
        eng.schedules.get("manual")


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"cron": "61 * * * *"}, ScheduleError, "minute"),
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, ScheduleError, "Mars/Olympus"),
        ({"every": "1h", "workflow": "no_such_workflow"}, WorkflowNotRegistered, "no_such"),
        (
            {"every": "1h", "start_at": at(hours=5), "end_at": at(hours=1)},
            ScheduleError,
            "end",
        ),
        ({"every": "1h", "overlap": "sometimes"}, ScheduleError, "sometimes"),
    ],
)
def test_invalid_schedules_store_nothing(eng, options, error, match):
    workflow = options.pop("workflow", report)
    with pytest.raises(error, match=match):
        eng.schedules.create("bad", workflow, **options)
    assert eng.schedules.list() == []
    assert eng.store.schedules() == []


def test_duplicate_id_is_refused(eng):
    eng.schedules.create("dup", report, every="1h")
    with pytest.raises(ScheduleError, match="exists already"):
        eng.schedules.create("dup", report, every="2h")


def test_dst_spring_forward_in_paris(clock, db_path):
    clock.advance_to(datetime(2030, 3, 30, 12, tzinfo=UTC))
    engine = Engine(db_path, clock=clock, make_default=False)
    try:
        engine.schedules.create("dst", report, cron="30 2 * * *", timezone="Europe/Paris")
        # 02:30 does not exist on 2030-03-31 in Paris: it fires when the clocks jump.
        assert engine.schedules.get("dst").next_fire == datetime(2030, 3, 31, 1, 0, tzinfo=UTC)
        advance(engine, datetime(2030, 3, 31, 1, 0, 1, tzinfo=UTC))
        assert runs(engine, "dst") == ["dst@2030-03-31T01:00:00Z"]
    finally:
        engine.stop(grace=0)
