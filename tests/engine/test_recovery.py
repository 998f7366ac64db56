"""Recovery: a fresh engine on the same file finishes what a stopped or killed one left.

The flagship guarantee: completed tasks are not run again, every task result the
workflow used is the committed one, and no workflow completes twice.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import recovery_workflows as wf
from child_process import kill_when_ready

from nbconductor.engine.engine import Engine
from nbconductor.engine.payload import payload_field, read_data
from nbconductor.storage.records import EventKind
from nbconductor.testing import wait_for


@pytest.fixture
def run_log(tmp_path, monkeypatch):
    log = tmp_path / "runs.log"
    log.touch()
    monkeypatch.setenv("RECOVERY_LOG", str(log))
    return log


def runs(log: Path) -> list[str]:
    return log.read_text().splitlines()


def check_finished_once(engine: Engine, execution_id: str, result: list[str]) -> None:
    history = engine.history(execution_id)
    completed = {}
    for e in history:
        if e.kind is EventKind.TASK_COMPLETED:
            assert e.command not in completed, f"task command {e.command} completed twice"
            completed[e.command] = payload_field(read_data(e.data), "result")
    assert result == [completed[c] for c in sorted(completed)]
    closing = [e for e in history if e.kind.value.startswith("Execution") and e.seq > 1]
    assert [e.kind for e in closing] == [EventKind.EXECUTION_COMPLETED]
    assert [e.seq for e in history] == list(range(1, len(history) + 1))


def kill_child_at(db: Path, point: str, pause: float, log: Path) -> None:
    env = {
        "RECOVERY_LOG": str(log),
        "RECOVERY_BLOCK_AT": "2" if point == "during_task" else "",
    }
    args = [str(db), point, str(pause)]
    kill_when_ready("recovery_child.py", args, log.with_suffix(".stderr"), env)


@pytest.mark.parametrize(
    ("point", "reran"),
    [
        ("during_task", ["run 0", "run 1", "run 2", "run 2", "run 3"]),
        ("during_sleep", ["run 0", "run 1", "run 2", "run 3"]),
        ("after_task", None),  # task 1 may or may not have started before the kill
    ],
)
def test_sigkill_then_fresh_engine_finishes(tmp_path, run_log, point, reran):
    db = tmp_path / "history.duckdb"
    kill_child_at(db, point, 0.5, run_log)
    before = runs(run_log)
    engine = Engine(db)
    try:
        result = engine.get("wf-1").result(timeout=30)
        check_finished_once(engine, "wf-1", result)
    finally:
        engine.stop(grace=0)
    after = runs(run_log)
    if reran is not None:
        assert after == reran
    else:
        assert before[0] == "run 0" and after.count("run 0") == 1
        assert sorted(set(after)) == ["run 0", "run 1", "run 2", "run 3"]


def test_stop_mid_task_then_fresh_engine_finishes(tmp_path, run_log, monkeypatch):
    db = tmp_path / "history.duckdb"
    monkeypatch.setenv("RECOVERY_BLOCK_AT", "2")
    engine = Engine(db)
    engine.start(wf.durable_pipeline, 4, 0.01, id="wf-1")
    wait_for(lambda: runs(run_log).count("run 2") == 1, what="task 2 to start")
    engine.stop(grace=0)
    monkeypatch.setenv("RECOVERY_BLOCK_AT", "")
    wf.HANG.set()  # let the abandoned thread end
    engine = Engine(db)
    try:
        result = engine.get("wf-1").result(timeout=30)
        check_finished_once(engine, "wf-1", result)
    finally:
        engine.stop(grace=0)
        wf.HANG.clear()
    assert runs(run_log) == ["run 0", "run 1", "run 2", "run 2", "run 3"]


def test_stop_during_durable_sleep_keeps_due_time(tmp_path, run_log):
    db = tmp_path / "history.duckdb"
    engine = Engine(db)
    h = engine.start(wf.durable_pipeline, 3, 0.4, id="wf-1")
    wait_for(lambda: any(e.kind is EventKind.TIMER_STARTED for e in h.history()), what="the sleep")
    engine.stop(grace=0)
    engine = Engine(db)
    try:
        result = engine.get("wf-1").result(timeout=30)
        check_finished_once(engine, "wf-1", result)
        history = engine.history("wf-1")
        started = next(e for e in history if e.kind is EventKind.TIMER_STARTED)
        fired = next(e for e in history if e.kind is EventKind.TIMER_FIRED)
        assert (fired.at - started.at).total_seconds() >= 0.4
    finally:
        engine.stop(grace=0)
    assert runs(run_log) == ["run 0", "run 1", "run 2"]
