"""Large values through the engine: stored once, read by SQL, loaded lazily on replay,
carried by the process runner, and kept across a SIGKILL (issue #16).

Real DuckDB files, real threads, a real child process for the process runner and for
the crash.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pl_payload_workflows as wf
import pytest
from child_process import kill_when_ready

import nbconductor as nc
from nbconductor.engine.engine import Engine
from nbconductor.errors import StoreError
from nbconductor.storage.lazy_value import LazyValue
from nbconductor.storage.records import EventKind
from nbconductor.testing import wait_for


@nc.task(name="pl_pass_on")
def pass_on(frame):
    return frame


@nc.workflow(name="pl_five_hops")
async def five_hops(frame) -> int:
    for _ in range(5):
        frame = await pass_on(frame)
    again = await nc.signal("again")
    return len(frame) + len(again)


def payload_rows(engine: Engine) -> list[tuple]:
    return engine.store.sql("SELECT hash, kind, rows FROM payloads ORDER BY hash")[1]


@pytest.mark.duckdb
def test_pl_a_frame_through_five_tasks_and_a_signal_is_stored_once(engine):
    frame = wf.frame_of(1000)
    handle = engine.start(five_hops, frame, id="pl-dedup")
    wait_for(lambda: handle.waiting_for == ["again"], what="the wait for 'again'")
    handle.signal("again", frame)
    assert handle.result(timeout=30) == 2000
    rows = payload_rows(engine)
    assert len(rows) == 1 and rows[0][1:] == ("pandas", 1000)
    (digest,) = rows[0][:1]
    assert engine.store.sql(f"SELECT count(*) FROM payload_{digest}")[1] == [(1000,)]
    # Every event holds the small reference, never the data.
    refs = engine.store.sql("SELECT count(*) FROM payload_refs WHERE execution_id = 'pl-dedup'")
    assert refs[1] == [(12,)]  # the workflow's input, 5 task inputs, 5 results, the signal
    assert max(len(e.data) for e in engine.history("pl-dedup")) < 500


@nc.workflow(name="pl_make_then_wait")
async def make_then_wait(rows: int) -> int:
    frame = await wf.make(rows)
    await nc.signal("go")
    return await wf.summarize(frame)


@pytest.mark.duckdb
def test_pl_a_stored_result_is_queryable_by_sql_while_the_engine_runs(engine):
    handle = engine.start(make_then_wait, 5000, id="pl-sql")
    wait_for(lambda: handle.waiting_for == ["go"], what="the wait for 'go'")
    # The engine waits for 'go' as soon as the tick ran; the task's result is readable by
    # SQL once that tick's batch is committed.
    wait_for(
        lambda: any(e.kind is EventKind.TASK_COMPLETED for e in handle.history()),
        what="the committed result of pl_make",
    )
    columns, rows = engine.store.sql(
        "SELECT count(*) AS n, sum(a) AS total, count(DISTINCT s) AS kinds "
        "FROM result('pl-sql', 'pl_make')"
    )
    assert columns == ["n", "total", "kinds"] and rows == [(5000, sum(range(5000)), 7)]
    assert engine.payloads.loads == 0  # SQL read it where it lies
    with pytest.raises(StoreError, match="has no result"):
        engine.store.sql("SELECT * FROM result('pl-sql', 'pl_summarize')")
    with pytest.raises(StoreError, match="not a table of the history file"):
        engine.store.sql("SELECT * FROM payload_0123")
    handle.signal("go")
    assert handle.result(timeout=30) == sum(range(5000))
    ((digest,),) = engine.store.sql("SELECT hash FROM payloads")[1]
    assert engine.store.sql(f"SELECT count(*) FROM payload('{digest}')")[1] == [(5000,)]
    with pytest.raises(StoreError, match="not a stored table"):
        engine.store.sql("SELECT * FROM result('pl-sql')")  # its result is an int


@nc.workflow(name="pl_touches_it")
async def touches_it(rows: int) -> int:
    frame = await wf.make(rows)
    await nc.signal("go")
    return len(frame)


def test_pl_replay_loads_a_value_only_when_workflow_code_uses_it(db_path):
    with Engine(db_path, make_default=False) as first:
        passed = first.start(make_then_wait, 100, id="pl-passes")
        used = first.start(touches_it, 100, id="pl-uses")
        for handle in (passed, used):
            wait_for(lambda h=handle: h.waiting_for == ["go"], what="the wait for 'go'")
    with Engine(db_path, make_default=False) as second:
        loaded: list[str] = []
        second.payloads.on_load = lambda ref: loaded.append(ref["hash"])
        for execution_id in ("pl-passes", "pl-uses"):
            handle = second.get(execution_id)
            wait_for(lambda h=handle: h.waiting_for == ["go"], what="the replayed wait")
        assert second.payloads.loads == 0  # replayed up to the signal: nothing loaded
        second.signal("pl-passes", "go")
        assert second.get("pl-passes").result(timeout=30) == sum(range(100))
        assert second.payloads.loads == 1  # by summarize, on its task thread
        assert second.payloads.captures == 0  # passed on as its reference: never re-hashed
        second.signal("pl-uses", "go")
        assert second.get("pl-uses").result(timeout=30) == 100
        assert second.payloads.loads == 2  # len(frame) in workflow code
        assert len(set(loaded)) == 1  # the same stored frame both times


@nc.workflow(name="pl_checks_type")
async def checks_type(rows: int) -> str:
    frame = await wf.make(rows)
    kind = "frame" if isinstance(frame, pd.DataFrame) else "other"
    lazy = type(frame) is LazyValue
    return f"{kind} {lazy} {frame['a'].sum()} {frame.shape}"


@pytest.mark.duckdb
def test_pl_workflow_code_sees_a_dataframe_that_loads_on_use(engine):
    handle = engine.start(checks_type, 10, id="pl-type")
    assert handle.result(timeout=30) == "frame True 45 (10, 3)"


@nc.task(name="pl_double_in_child", runner="process")
def double_in_child(frame, scale):
    return frame.assign(b=frame["a"] * 2), scale * 2, os.getpid()


@nc.workflow(name="pl_process_frames")
async def process_frames(rows: int) -> list:
    frame = await wf.make(rows)
    doubled, scale, pid = await double_in_child(frame, np.arange(3.0))
    return [int(doubled["b"].sum()), scale.tolist(), pid]


@pytest.mark.duckdb
def test_pl_a_process_runner_task_receives_and_returns_a_frame(engine):
    total, scale, pid = engine.start(process_frames, 1000, id="pl-proc").result(timeout=120)
    assert total == 2 * sum(range(1000)) and scale == [0.0, 2.0, 4.0]
    assert pid != os.getpid()
    kinds = sorted(kind for _, kind, _ in payload_rows(engine))
    assert kinds == ["numpy", "numpy", "pandas", "pandas"]  # frame, scale, doubled, 2*scale


def test_pl_sigkill_after_make_resumes_without_running_make_again(tmp_path):
    db = tmp_path / "history.duckdb"
    log = tmp_path / "make.log"
    env = {"PL_MAKE_LOG": str(log)}
    kill_when_ready("pl_payload_child.py", [str(db), "20000"], tmp_path / "child.stderr", env, 90)
    os.environ["PL_MAKE_LOG"] = str(log)
    try:
        with Engine(db, make_default=False) as engine:
            assert engine.get("pl-crash").result(timeout=60) == sum(range(20000))
            kinds = [e.kind for e in engine.history("pl-crash") if e.name == "pl_make"]
    finally:
        del os.environ["PL_MAKE_LOG"]
    assert log.read_text() == "make\n"  # made once, by the killed process
    assert kinds == [EventKind.TASK_SCHEDULED, EventKind.TASK_COMPLETED]


def test_pl_inline_limit_is_configurable_and_checked(tmp_path):
    with Engine(None, make_default=False, inline_limit=10) as engine:
        text = engine.payloads.encode_value("x" * 11, what="a value")
        assert '"kind":"str"' in text
        assert engine.payloads.decode_value(text) == "x" * 11
        assert engine.payloads.encode_value("x" * 10, what="a value") == '"xxxxxxxxxx"'
    with pytest.raises(ValueError, match="inline_limit is a number of bytes"):
        Engine(None, make_default=False, inline_limit=-1)


@pytest.mark.duckdb
def test_pl_views_and_history_show_a_preview_not_the_value(engine):
    from nbconductor.widgets.execution_snapshot import ExecutionReader

    @nc.workflow(name="pl_returns_frame")
    async def returns_frame(rows: int):
        return await wf.make(rows)

    handle = engine.start(returns_frame, 50_000, id="pl-preview")
    handle.result(timeout=30)
    snapshot = ExecutionReader(engine, "pl-preview").read()
    lines = snapshot.result.splitlines()
    assert lines[0].startswith("<stored pandas DataFrame, 50,000 rows")
    assert "a: int64" in lines[0]
    assert lines[1].split() == ["a", "x", "s"] and lines[2].split() == ["0", "0.0", "'k0'"]
    assert lines[-1] == "... 49,995 more rows"
    assert engine.store.sql("SELECT count(*) FROM result('pl-preview')")[1] == [(50_000,)]
    completed = [e for e in handle.history() if e.kind is EventKind.TASK_COMPLETED]
    assert len(completed[0].data) < 400 and '"rows":50000' in completed[0].data


@nc.workflow(name="pl_frame_then_wait")
async def frame_then_wait(frame, wait: bool) -> int:
    if wait:
        await nc.signal("go")
    return len(frame)


@pytest.mark.duckdb
def test_pl_prune_deletes_payloads_of_pruned_executions_never_shared_or_open_ones(engine):
    engine.store.payload_grace = 0  # collect what was stored a moment ago
    shared, own = wf.frame_of(300), wf.frame_of(400)
    assert engine.start(frame_then_wait, shared, False, id="pl-closed-shared").result(30) == 300
    assert engine.start(frame_then_wait, own, False, id="pl-closed-own").result(30) == 400
    open_one = engine.start(frame_then_wait, shared, True, id="pl-open")
    wait_for(lambda: open_one.waiting_for == ["go"], what="the open execution's wait")
    assert sorted(rows for _, _, rows in payload_rows(engine)) == [300, 400]
    cutoff = datetime.now(UTC) + timedelta(seconds=5)
    preview = engine.prune(closed_before=cutoff, dry_run=True)  # says what would go
    assert preview.executions == 2 and preview.payloads["payloads"] == 1
    assert preview.payloads["bytes"] > 0
    assert sorted(rows for _, _, rows in payload_rows(engine)) == [300, 400]
    report = engine.prune(closed_before=cutoff)
    assert report.payloads == preview.payloads
    assert report.executions == 2 and report.payloads["payloads"] == 1
    assert [rows for _, _, rows in payload_rows(engine)] == [300]  # the open one's
    open_one.signal("go")
    assert open_one.result(timeout=30) == 300  # its frame is still there


def test_pl_a_dry_run_prune_on_the_memory_store_counts_the_payloads_it_would_free(engine):
    engine.store.payload_grace = 0
    assert engine.start(frame_then_wait, wf.frame_of(300), False, id="pl-mem-own").result(30)
    preview = engine.prune(closed_before=datetime.now(UTC) + timedelta(seconds=5), dry_run=True)
    assert preview.executions == 1 and preview.payloads["payloads"] == 1
    report = engine.prune(closed_before=datetime.now(UTC) + timedelta(seconds=5))
    assert report.payloads == preview.payloads
