"""Signals, conditions, state, queries, updates and progress — each also across a restart."""

from __future__ import annotations

import threading

import pytest

import nbconductor as nc
from nbconductor.engine.engine import Engine
from nbconductor.errors import ExecutionClosed, ExecutionNotFound, PayloadError, UpdateRejected
from nbconductor.storage.records import EventKind
from nbconductor.testing import wait_for

RELEASE = threading.Event()


@pytest.fixture(autouse=True)
def _release():
    RELEASE.clear()
    yield
    RELEASE.set()


@nc.task
def refund(amount: float) -> str:
    return f"refunded {amount}"


@nc.workflow(signals=["approve", "reject"])
async def approval(amount: float) -> str:
    nc.state["stage"] = "waiting for approval"
    decision = await nc.signal("approve", timeout="24h")
    if decision is None:
        return await refund(amount)
    nc.state["stage"] = "approved"
    return f"approved by {decision['by']}"


@pytest.mark.duckdb
def test_approved(engine):
    h = engine.start(approval, 10.0)
    wait_for(lambda: h.waiting_for == ["approve"], what="the signal wait")
    assert h.state == {"stage": "waiting for approval"}
    h.signal("approve", {"by": "ann"})
    assert h.result(timeout=10) == "approved by ann"
    received = [e for e in h.history() if e.kind is EventKind.SIGNAL_RECEIVED]
    assert [e.name for e in received] == ["approve"]
    assert approval.signals == ("approve", "reject")


def test_approval_times_out(skipping_engine):
    h = skipping_engine.start(approval, 10.0)
    assert h.result(timeout=10) == "refunded 10.0"
    fired = [e for e in h.history() if e.kind is EventKind.TIMER_FIRED]
    assert (fired[0].at - h.history()[0].at).total_seconds() == 24 * 3600


def test_approval_across_restart(db_path):
    eng = Engine(db_path)
    h = eng.start(approval, 5.0, id="approve-me")
    wait_for(lambda: h.waiting_for == ["approve"], what="the signal wait")
    eng.stop(grace=0)
    eng = Engine(db_path)
    try:
        h = eng.get("approve-me")
        wait_for(lambda: h.waiting_for == ["approve"], what="the wait after replay")
        h.signal("approve", {"by": "bob"})
        assert h.result(timeout=10) == "approved by bob"
    finally:
        eng.stop(grace=0)


@nc.workflow
async def collector(n: int) -> list:
    await nc.sleep(0.01)  # let signals arrive before anyone waits: they are buffered
    items = []
    async for item in nc.signals("item"):
        items.append(item)
        if len(items) == n:
            return items
    return items


def test_buffered_signals_are_delivered_in_order(engine):
    h = engine.start(collector, 3)
    for i in range(3):
        h.signal("item", i)
    assert h.result(timeout=10) == [0, 1, 2]


def test_signal_errors(engine):
    with pytest.raises(ExecutionNotFound):
        engine.signal("no-such-execution", "approve")
    h = engine.start(collector, 1)
    with pytest.raises(ValueError, match="signal name"):
        h.signal("bad name!")
    with pytest.raises(PayloadError, match="signal 'item'"):
        h.signal("item", threading.Lock())
    h.signal("item", "x")
    h.result(timeout=10)
    with pytest.raises(ExecutionClosed, match="Completed"):
        h.signal("item", "late")


def test_signal_while_waiting_for_definition_is_kept(db_path, registry):
    @nc.workflow(name="signalled_later")
    async def signalled_later() -> str:
        return await nc.signal("go")

    eng = Engine(db_path)
    eng.start(signalled_later, id="later-1")
    wait_for(lambda: eng.get("later-1").waiting_for == ["go"], what="the wait")
    eng.stop(grace=0)
    registry.forget("workflow", "signalled_later")
    eng = Engine(db_path)
    try:
        eng.signal("later-1", "go", "went")  # recorded, delivered once the code is back

        @nc.workflow(name="signalled_later")
        async def signalled_later_again() -> str:
            return await nc.signal("go")

        assert eng.get("later-1").result(timeout=10) == "went"
    finally:
        eng.stop(grace=0)


@nc.workflow
async def counter_until(limit: int) -> int:
    nc.state["count"] = 0

    async def count_signals():
        async for _ in nc.signals("tick"):
            nc.state["count"] += 1

    listener = nc.state and __import__("asyncio").ensure_future(count_signals())
    met = await nc.wait_condition(lambda: nc.state["count"] >= limit, timeout="1h")
    listener.cancel()
    return nc.state["count"] if met else -1


def test_wait_condition(engine):
    h = engine.start(counter_until, 3)
    for _ in range(3):
        h.signal("tick")
    assert h.result(timeout=10) == 3


def test_wait_condition_timeout(skipping_engine):
    assert skipping_engine.start(counter_until, 3).result(timeout=10) == -1


@nc.task
def slow_step() -> str:
    RELEASE.wait(30)
    return "done"


@nc.workflow
async def reporting() -> str:
    nc.state["phase"] = "working"
    nc.progress(0.5, "half way")
    result = await slow_step()
    nc.state["phase"] = "finished"
    return result


@reporting.query
def phase(state, suffix=""):
    return state.get("phase", "?") + suffix


@pytest.mark.duckdb
def test_query_and_progress_during_a_running_task(engine):
    h = engine.start(reporting)
    wait_for(lambda: h.progress["tasks"], what="the running task")
    assert h.query("phase", "!") == "working!"
    progress = h.progress
    assert (progress["fraction"], progress["message"]) == (0.5, "half way")
    assert progress["tasks"][0]["task"] == "slow_step"
    RELEASE.set()
    assert h.result(timeout=10) == "done"
    with pytest.raises(LookupError, match="no query 'nope'"):
        h.query("nope")


@nc.workflow
async def cart() -> list:
    nc.state["items"] = []
    await nc.signal("checkout")
    return nc.state["items"]


def _no_duplicates(state, item):
    if item in state["items"]:
        raise ValueError(f"{item} is already in the cart")


@cart.update(validator=_no_duplicates)
async def add_item(item):
    nc.state["items"].append(item)
    return len(nc.state["items"])


def test_updates(db_path):
    eng = Engine(db_path)
    h = eng.start(cart, id="cart-1")
    assert h.update("add_item", "apple") == 1
    assert h.update("add_item", "pear") == 2
    with pytest.raises(UpdateRejected, match="already in the cart"):
        h.update("add_item", "apple")
    with pytest.raises(UpdateRejected, match="no update 'remove'"):
        h.update("remove", "apple")
    eng.stop(grace=0)
    eng = Engine(db_path)  # the accepted updates replay; the rejected one left no trace
    try:
        h = eng.get("cart-1")
        wait_for(lambda: h.state.get("items") == ["apple", "pear"], what="replayed state")
        assert h.update("add_item", "plum") == 3
        h.signal("checkout")
        assert h.result(timeout=10) == ["apple", "pear", "plum"]
    finally:
        eng.stop(grace=0)


def test_signal_sent_while_the_engine_is_stopped_is_delivered_after_restart(db_path):
    from nbconductor.engine import offline
    from nbconductor.storage.duckdb.duckdb_store import DuckDBStore

    eng = Engine(db_path)
    h = eng.start(approval, 1.0, id="offline-signal")
    wait_for(lambda: h.waiting_for == ["approve"], what="the signal wait")
    eng.stop(grace=0)
    store = DuckDBStore(db_path)
    try:
        offline.signal(store, "offline-signal", "approve", {"by": "cli"})
        with pytest.raises(ExecutionNotFound):
            offline.signal(store, "nope", "approve")
    finally:
        store.close()
    eng = Engine(db_path)
    try:
        assert eng.get("offline-signal").result(timeout=10) == "approved by cli"
    finally:
        eng.stop(grace=0)


def test_blocking_result_says_it_waits_for_a_signal(engine, capsys, monkeypatch):
    from nbconductor.engine import handle as handle_module

    monkeypatch.setattr(handle_module, "NOTICE_AFTER", 0.1)
    h = engine.start(approval, 1.0)
    wait_for(lambda: h.waiting_for == ["approve"], what="the signal wait")
    with pytest.raises(TimeoutError, match="waiting for signal 'approve'"):
        h.result(timeout=0.6)
    assert "is waiting for signal 'approve'" in capsys.readouterr().err
    h.signal("approve", {"by": "me"})
    assert h.result(timeout=10) == "approved by me"
