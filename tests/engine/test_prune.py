"""``engine.prune`` and ``Engine(retention=...)`` on real engines: what goes, what stays
while a family member is open, bad input, and retention running on its own."""

from __future__ import annotations

from datetime import timedelta

import pytest

import nbconductor as nc
from nbconductor.engine.clock import VirtualClock
from nbconductor.engine.engine import Engine
from nbconductor.engine.retention import RetentionPolicy
from nbconductor.errors import InvalidDuration
from nbconductor.testing import advance, wait_for


@nc.workflow
async def sp_leaf(x: int) -> int:
    return x + 1


@nc.workflow
async def sp_parent(x: int) -> int:
    got = await nc.child(sp_leaf, x, id="sp-p/leaf")
    await nc.signal("finish")
    return got


@nc.workflow
async def sp_loop(n: int) -> int:
    if n < 2:
        nc.continue_as_new(n + 1)
    await nc.signal("finish")
    return n


def _gone(engine: Engine, execution_id: str) -> bool:
    return engine.store.get_execution(execution_id) is None


@pytest.mark.duckdb
def test_sp_prune_keeps_families_with_an_open_member(engine):
    engine.start(sp_leaf, 1, id="sp-done").result(timeout=10)
    parent = engine.start(sp_parent, 1, id="sp-p")
    wait_for(lambda: engine.waiting_signals("sp-p") == ["finish"], what="parent waits")
    loop = engine.start(sp_loop, 0, id="sp-loop")
    wait_for(lambda: engine.waiting_signals("sp-loop#3") == ["finish"], what="chain's last run")
    engine.ping()  # the waits above read memory; this returns once it is all committed

    report = engine.prune(closed_before="0s")  # everything closed by now, if it may go
    assert report.ids == ["sp-done"] and report.events == 2  # started, completed
    assert report.kept == 3  # sp-p/leaf (parent open), sp-loop and sp-loop#2 (chain open)
    assert not _gone(engine, "sp-p/leaf") and not _gone(engine, "sp-loop")

    parent.signal("finish", None)
    engine.signal("sp-loop#3", "finish", None)
    assert parent.result(timeout=10) == 2 and loop.result(timeout=10) == 2
    report = engine.prune(closed_before=timedelta(0))
    assert sorted(report.ids) == ["sp-loop", "sp-loop#2", "sp-loop#3", "sp-p", "sp-p/leaf"]
    assert engine.store.count_executions() == 0
    assert report.bytes_before and report.bytes_after


def test_sp_dry_run_changes_nothing(engine):
    engine.start(sp_leaf, 1, id="sp-dry").result(timeout=10)
    report = engine.prune("0s", dry_run=True)
    assert (report.dry_run, report.ids, report.events) == (True, ["sp-dry"], 2)
    assert engine.describe("sp-dry").status.closed
    assert engine.prune("1d").executions == 0  # closed a moment ago: younger than a day


@pytest.mark.parametrize("bad", ["soon", -1, object()])
def test_sp_prune_bad_age_says_what_to_give(engine, bad):
    with pytest.raises(InvalidDuration, match=r"closed_before=.*give an age, such as '30d'"):
        engine.prune(closed_before=bad)


def test_sp_bad_retention_fails_before_the_engine_starts(tmp_path):
    with pytest.raises(InvalidDuration, match="retention keep"):
        Engine(tmp_path / "h.duckdb", retention="soon", make_default=False)
    assert not (tmp_path / "h.duckdb").exists()
    with pytest.raises(ValueError, match="batch"):
        RetentionPolicy("30d", batch=0)


def test_sp_retention_prunes_on_its_own(tmp_path):
    clock = VirtualClock()
    policy = RetentionPolicy("1h", every=0.02, batch=2)
    engine = Engine(tmp_path / "h.duckdb", clock=clock, retention=policy, make_default=False)
    try:
        handles = [engine.start(sp_leaf, i, id=f"sp-ret-{i}") for i in range(5)]
        for h in handles:
            h.result(timeout=10)
        waiting = engine.start(sp_loop, 5, id="sp-ret-open")
        wait_for(lambda: engine.waiting_signals("sp-ret-open") == ["finish"], what="open run")
        engine.ping()  # committed, not only in memory
        passes = engine._retention.passes
        wait_for(lambda: engine._retention.passes >= passes + 2, what="two retention passes")
        assert engine.store.count_executions() == 6  # nothing is an hour old yet
        advance(engine, clock.now() + timedelta(hours=2))
        wait_for(lambda: engine._retention.pruned == 5, what="retention pruning")
        assert engine.store.count_executions() == 1
        assert engine.store.get_execution("sp-ret-open") is not None
        assert engine._retention.error is None
        engine.signal(waiting.id, "finish", None)
        assert waiting.result(timeout=10) == 5
    finally:
        engine.stop(grace=0)
    assert not engine._retention._thread.is_alive()
