"""Replay: deterministic helpers on replay, non-determinism detection, golden histories."""

from __future__ import annotations

import pytest

import nbconductor as nc
from nbconductor.engine.engine import Engine
from nbconductor.errors import NonDeterminismError
from nbconductor.storage.records import EventKind
from nbconductor.testing import (
    TimeSkippingEngine,
    export_history,
    load_history,
    replay,
    wait_for,
)


@nc.task
def fetch(i: int) -> int:
    return i + 100


@nc.task
def other(i: int) -> int:
    return -i


def define_v1():
    @nc.workflow(name="editable")
    async def editable(n: int) -> list:
        a = await fetch(n)
        await nc.sleep("1 hour")
        b = await fetch(n + 1)
        return [a, b, nc.random(), str(nc.uuid4()), nc.now().isoformat()]

    return editable


def define_v2():
    @nc.workflow(name="editable")
    async def editable(n: int) -> list:
        a = await other(n)  # a different task where the history has fetch
        await nc.sleep("1 hour")
        return [a]

    return editable


def test_replaying_a_recorded_history_reproduces_it():
    wf = define_v1()
    with TimeSkippingEngine() as eng:
        h = eng.start(wf, 1)
        result = h.result(timeout=5)
        recorded = export_history(h.history())
    # The same code replays cleanly, and the deterministic helpers give the same values.
    replay(recorded, wf)
    from nbconductor.engine.runtime import replay as runtime_replay

    runtime, pending = runtime_replay(wf, load_history(recorded))
    assert pending == [] and runtime.closed
    assert runtime.main.result() == result


def test_edited_definition_is_detected():
    wf = define_v1()
    with TimeSkippingEngine() as eng:
        h = eng.start(wf, 1)
        h.result(timeout=5)
        recorded = export_history(h.history())
    changed = define_v2()
    with pytest.raises(NonDeterminismError) as info:
        replay(recorded, changed)
    message = str(info.value)
    assert "'fetch'" in message and "'other'" in message
    assert changed.version in message and wf.version in message
    define_v1()


def test_golden_history_file(tmp_path):
    wf = define_v1()
    with TimeSkippingEngine() as eng:
        h = eng.start(wf, 7)
        h.result(timeout=5)
        path = tmp_path / "golden.json"
        path.write_text(export_history(h.history()))
    replay(path, wf)
    replay(str(path), wf)


def test_open_execution_blocks_on_edit_and_resumes_when_code_is_restored(db_path):
    wf = define_v1()
    eng = Engine(db_path)
    h = eng.start(wf, 1, id="edit-me")
    wait_for(lambda: any(e.kind is EventKind.TIMER_STARTED for e in h.history()), what="the sleep")
    eng.stop(grace=0)

    define_v2()
    eng = Engine(db_path)
    try:
        blocked = wait_for(lambda: eng.get("edit-me").condition, what="the blocked condition")
        assert blocked.startswith("blocked:") and "'other'" in blocked
        assert "blocked:" in (eng.describe("edit-me").condition or "")
        # Restoring the code (re-running the old cell) unblocks and resumes it.
        define_v1()
        wait_for(lambda: eng.get("edit-me").condition is None, what="unblocking")
        assert eng.status()["blocked"] == 0
    finally:
        eng.stop(grace=0)


def test_execution_waits_for_its_definition(db_path, registry):
    @nc.workflow(name="late_definition")
    async def late_definition() -> str:
        await nc.sleep(0.2)
        return "done"

    eng = Engine(db_path)
    eng.start(late_definition, id="late-1")
    wait_for(lambda: len(eng.history("late-1")) >= 2, what="the timer")
    eng.stop(grace=0)
    registry.forget("workflow", "late_definition")

    eng = Engine(db_path)
    try:
        h = eng.get("late-1")
        assert "waiting for the definition of workflow 'late_definition'" in h.condition
        assert eng.status()["waiting_for_definition"] == 1

        @nc.workflow(name="late_definition")
        async def late_definition_again() -> str:
            await nc.sleep(0.2)
            return "done"

        assert h.result(timeout=10) == "done"
    finally:
        eng.stop(grace=0)


def test_a_history_that_cannot_be_replayed_parks_only_that_execution(db_path):
    @nc.workflow(name="holds_a_token")
    async def holds_a_token(token) -> str:
        await nc.sleep(0.2)
        return "done"

    eng = Engine(db_path, make_default=False, allow_pickle=True)  # this engine opted in
    eng.start(holds_a_token, Token(), id="pickled")
    wait_for(lambda: len(eng.history("pickled")) >= 2, what="the timer")
    eng.stop(grace=0)
    eng = Engine(db_path, make_default=False)  # the next one did not
    try:
        condition = wait_for(lambda: eng.get("pickled").condition, what="the condition")
        assert condition.startswith("blocked: PayloadError")
        assert eng.running  # the engine goes on for everything else
        assert eng.start(fetch_one).result(timeout=10) == 101
    finally:
        eng.stop(grace=0)


@nc.workflow
async def fetch_one() -> int:
    return await fetch(1)


class Token:
    """Stored by pickle only (module level, so pickle can find it)."""
