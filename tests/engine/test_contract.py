"""The durable-execution contract users porting from Temporal and DBOS rely on: task
calls as coroutines, cancellation that waits for children, continue-as-new chains
addressed by id, handles readable at once, ids that belong to one workflow, memoized
patches."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import anyio
import pytest

import nbconductor as nc
from nbconductor.engine.task_dispatch import CLEANUP_GRACE
from nbconductor.errors import ExecutionNotFound
from nbconductor.operations.engine_operations import EngineOperations
from nbconductor.operations.text import execution_text
from nbconductor.storage.records import EventKind, Status
from nbconductor.testing import advance, replay, wait_for
from nbconductor.widgets.execution_html import render
from nbconductor.widgets.execution_snapshot import ExecutionReader

order: list[str] = []


@nc.task
def echo(value: str) -> str:
    return value


@nc.workflow
async def with_create_task(n: int) -> list[str]:
    first = asyncio.create_task(echo("a"))
    second = asyncio.get_running_loop().create_task(echo("b"))
    async with asyncio.TaskGroup() as group:
        third = group.create_task(echo("c"))
        fourth = group.create_task(nc.start_child(child_echo, "d"))
    return [await first, await second, third.result(), fourth.result()]


@nc.workflow
async def child_echo(value: str) -> str:
    return await echo(value)


def test_task_and_child_calls_run_under_create_task_and_task_groups(engine):
    h = engine.start(with_create_task, 1)
    assert h.result(timeout=10) == ["a", "b", "c", "d"]
    history = h.history()
    scheduled = [e.name for e in history if e.kind is EventKind.TASK_SCHEDULED]
    assert scheduled == ["echo", "echo", "echo"]  # in call order, each run once
    completed = [e.command for e in history if e.kind is EventKind.TASK_COMPLETED]
    assert sorted(completed) == [e.command for e in history if e.kind is EventKind.TASK_SCHEDULED]


# --- patched() answers once per execution --------------------------------------------


def define_unpatched():
    @nc.workflow(name="memo_patch")
    async def memo_patch() -> list:
        await echo("first")
        await nc.signal("go")
        return ["old"]

    return memo_patch


def define_patched():
    @nc.workflow(name="memo_patch")
    async def memo_patch() -> list:
        before = nc.patched("x")  # during replay: this execution predates the patch
        await echo("first")
        await nc.signal("go")
        after = nc.patched("x")  # live now, but the same execution: the same answer
        return [before, after]

    return memo_patch


def test_patched_answers_the_same_within_one_execution_across_a_restart(db_path):
    old = define_unpatched()
    with nc.Engine(db_path) as eng:
        h = eng.start(old, id="memo")
        wait_for(lambda: h.waiting_for == ["go"], what="the signal wait")
    new = define_patched()
    with nc.Engine(db_path) as eng:
        h = eng.get("memo")
        wait_for(lambda: h.waiting_for == ["go"], what="the replayed wait")
        h.signal("go")
        assert h.result(timeout=10) == [False, False]
        fresh = eng.start(new, id="memo-new")
        wait_for(lambda: fresh.waiting_for == ["go"], what="the new wait")
        fresh.signal("go")
        assert fresh.result(timeout=10) == [True, True]
    with nc.Engine(db_path) as eng:  # both histories replay as recorded
        assert eng.get("memo").result(timeout=5) == [False, False]
        replay(eng.history("memo"), new)
        replay(eng.history("memo-new"), new)


# --- ids belong to one workflow ------------------------------------------------------


@nc.workflow
async def contract_waits_for_go() -> str:
    return await nc.signal("go")


@nc.workflow
async def other_waiter() -> str:
    return await nc.signal("go")


def test_start_refuses_an_id_held_by_another_workflow(engine):
    h = engine.start(contract_waits_for_go, id="shared")
    # accepted but perhaps not taken in yet, then open: refused either way
    with pytest.raises(nc.ExecutionAlreadyExists) as info:
        engine.start(other_waiter, id="shared")
    assert "'contract_waits_for_go'" in str(info.value) and "'other_waiter'" in str(info.value)
    engine.ping()
    with pytest.raises(nc.ExecutionAlreadyExists):
        engine.start(other_waiter, id="shared")
    assert engine.start(contract_waits_for_go, id="shared") == h  # same workflow: idempotent
    h.signal("go", "done")
    assert h.result(timeout=10) == "done"
    with pytest.raises(nc.ExecutionAlreadyExists):  # closed: still its workflow's id
        engine.start(other_waiter, id="shared")
    assert engine.start(contract_waits_for_go, id="shared").result(timeout=5) == "done"


@nc.workflow
async def reuses_a_child_id() -> str:
    try:
        await nc.child(child_echo, "x", id="shared-child")
    except nc.ChildFailed as exc:
        return str(exc)
    return "started"


def test_a_taken_child_id_names_the_workflows(engine):
    engine.start(contract_waits_for_go, id="shared-child")
    message = engine.start(reuses_a_child_id).result(timeout=10)
    assert "None" not in message
    assert "'child_echo'" in message and "'contract_waits_for_go'" in message


# --- a handle works from the moment start() returns ------------------------------------


@nc.workflow
async def stateful(label: str) -> str:
    nc.state["label"] = label
    return await nc.signal("go")


@stateful.query
def label(state):
    return state.get("label", "not yet")


def test_a_fresh_handle_answers_every_read_at_once(engine):
    for i in range(20):  # some reads land before the engine thread takes the start in
        h = engine.start(stateful, "L", id=f"fresh-{i}")
        assert h.state in ({}, {"label": "L"})
        assert h.query("label") in ("not yet", "L")
        assert h.describe().workflow == "stateful"
        assert h.status is Status.RUNNING
        assert h.waiting_for in ([], ["go"])
        assert h.progress["tasks"] == []
        h.signal("go", i)
        assert h.result(timeout=10) == i


@nc.workflow
async def at_once(i: int) -> int:
    return i


@pytest.mark.duckdb
def test_an_execution_is_found_by_id_at_every_moment_of_its_start_and_close(engine):
    # Reads from another thread race the engine thread taking the start in, committing
    # it (pipelined, so the row comes later) and closing it: none may say "not found".
    # Before the lookups were ordered, ~4 % of the reads here missed.
    misses: list[str] = []
    for i in range(300):
        h = engine.start(at_once, i, id=f"found-{i}")
        done = threading.Event()

        def read(h=h, done=done):
            while not done.is_set():
                for what, look in (
                    ("get", engine.get),
                    ("describe", engine.describe),
                    ("status", lambda i, h=h: h.status),
                ):
                    try:
                        look(h.id)
                    except ExecutionNotFound:
                        misses.append(f"{what} {h.id}")

        reader = threading.Thread(target=read)
        reader.start()
        try:
            assert h.result(timeout=10) == i
        finally:
            done.set()
            reader.join()
    assert misses == []


# --- a continue-as-new chain is addressed by its id ----------------------------------


@nc.workflow
async def rounds(n: int) -> str:
    nc.state["round"] = n
    if n < 3:
        await nc.signal("next")
        nc.continue_as_new(n + 1)
    return await nc.signal("done")


@rounds.query
def round_number(state):
    return state.get("round")


@rounds.update
async def bump(value: int) -> int:
    nc.state["bumped"] = value
    return value + 1


def test_the_id_of_a_chain_reaches_its_latest_run_across_a_restart(db_path):
    with nc.Engine(db_path) as eng:
        h = eng.start(rounds, 1, id="rounds")
        wait_for(lambda: h.waiting_for == ["next"], what="round 1")
        h.signal("next")
        wait_for(lambda: h.state.get("round") == 2, what="round 2 through the first id")
        assert h.waiting_for == ["next"] and h.status is Status.RUNNING
        assert h.query("round_number") == 2
        assert h.update("bump", 5) == 6 and eng.state_of("rounds")["bumped"] == 5
        eng.signal("rounds", "next")  # the id, not a handle
    with nc.Engine(db_path) as eng:
        h = eng.get("rounds")
        wait_for(lambda: h.state.get("round") == 3, what="round 3 after the restart")
        assert h.latest_run == "rounds#3"
        assert eng.waiting_signals("rounds") == ["done"]
        assert eng.query("rounds", "round_number") == 3
        assert eng.progress_of("rounds")["tasks"] == []
        h.cancel()
        with pytest.raises(nc.ExecutionFailed, match="Cancelled"):
            h.result(timeout=10)
        assert eng.describe("rounds#3").status is Status.CANCELLED
        assert eng.describe("rounds").status is Status.CONTINUED_AS_NEW  # each run stays
        with pytest.raises(nc.ExecutionClosed):  # the chain is closed now
            h.signal("done")


def test_the_command_surface_addresses_the_chain_by_its_id(engine):
    h = engine.start(rounds, 2, id="short-rounds")
    wait_for(lambda: h.waiting_for == ["next"], what="round 2")
    ops = EngineOperations(engine)  # what %conductor, the CLI and the socket run
    ops.call("signal", id="short-rounds", name="next")
    wait_for(lambda: h.waiting_for == ["done"], what="round 3")
    ops.call("terminate", id="short-rounds", reason="enough")
    with pytest.raises(nc.ExecutionFailed, match="Terminated"):
        h.result(timeout=10)


# --- cancelling a parent waits for its child's cancellation ------------------------------

CLEANUP_GATE = threading.Event()


@nc.task
def cleanup(what: str) -> str:
    if not CLEANUP_GATE.wait(30):
        raise TimeoutError("the test never opened the cleanup gate")
    return f"cleaned {what}"


@nc.workflow
async def careful_child() -> str:
    try:
        return await nc.signal("never")
    except asyncio.CancelledError:
        await cleanup("child")  # cleanup work after the cancel request
        raise


@nc.workflow
async def awaiting_parent() -> str:
    return await nc.child(careful_child, id="careful-child")


@pytest.mark.duckdb
def test_cancelling_a_parent_waits_for_its_child_to_clean_up_across_a_restart(db_path):
    CLEANUP_GATE.clear()
    try:
        with nc.Engine(db_path) as eng:
            parent = eng.start(awaiting_parent, id="careful-parent")
            wait_for(lambda: eng.waiting_signals("careful-child") == ["never"], what="the child")
            parent.cancel()
            child = eng.get("careful-child")
            wait_for(lambda: child.progress["tasks"], what="the child's cleanup task")
            assert parent.status is Status.RUNNING  # waits for the child's cancellation
            eng.stop(grace=0)  # a crash-like stop in the middle of the cleanup
        CLEANUP_GATE.set()  # the cleanup attempt runs again in the next engine
        with nc.Engine(db_path) as eng:
            parent, child = eng.get("careful-parent"), eng.get("careful-child")
            with pytest.raises(nc.ExecutionFailed, match="Cancelled"):
                child.result(timeout=10)
            with pytest.raises(nc.ExecutionFailed, match="Cancelled"):
                parent.result(timeout=10)
            child_kinds = [e.kind for e in child.history()]
            assert EventKind.TASK_COMPLETED in child_kinds  # the cleanup ran to its end
            assert EventKind.EXECUTION_TERMINATED not in child_kinds
            parent_kinds = [e.kind for e in parent.history()]
            assert parent_kinds[-2:] == [EventKind.CHILD_CLOSED, EventKind.EXECUTION_CANCELLED]
    finally:
        CLEANUP_GATE.set()


# --- task context: task_info() and resumable tasks -------------------------------------

INFOS: list = []


@nc.task(retry=nc.Retry(initial="1ms", max_attempts=3))
def resumable(total: int) -> int:
    info = nc.task_info()
    INFOS.append(info)
    done = info.heartbeat_details or 0  # the previous attempt's checkpoint
    while done < total:
        done += 1
        nc.heartbeat(details=done)
        if info.attempt == 1 and done == 2:
            raise RuntimeError("crashed half way")
    return done * 10 + info.attempt


@nc.workflow
async def runs_resumable() -> int:
    return await resumable(4)


@nc.task(retry=nc.Retry(max_attempts=1))
def checkpoints_then_fails() -> None:
    nc.heartbeat(details={"row": 7})
    raise RuntimeError("gave up")


@nc.workflow
async def sees_last_heartbeat() -> dict:
    try:
        await checkpoints_then_fails()
    except nc.TaskFailed as exc:
        return exc.last_heartbeat_details
    return {}


def test_task_info_gives_a_retry_the_last_checkpoint(engine):
    INFOS.clear()
    h = engine.start(runs_resumable, id="resume-1")
    assert h.result(timeout=10) == 42  # resumed from 2, not from 0, on attempt 2
    first, second = INFOS
    assert (first.attempt, first.heartbeat_details) == (1, None)
    assert (second.attempt, second.heartbeat_details) == (2, 2)
    for info in INFOS:
        assert info.execution_id == "resume-1" and info.workflow == "runs_resumable"
        assert info.task == "resumable"
        assert info.scheduled_at <= info.started_at
    assert first.scheduled_at == second.scheduled_at
    failed = [e for e in h.history() if e.kind is EventKind.TASK_FAILED]
    assert '"last_heartbeat_details":2' in failed[0].data
    assert engine.start(sees_last_heartbeat).result(timeout=10) == {"row": 7}


def test_task_info_outside_a_task_says_where_it_works():
    with pytest.raises(nc.NotInTask, match="task_info"):
        nc.task_info()


@nc.task(retry=nc.Retry(initial="300ms", max_attempts=2))
def resumable_slowly(total: int) -> list:
    info = nc.task_info()
    done = info.heartbeat_details or 0
    nc.heartbeat(details=done + 1)
    if info.attempt == 1:
        raise RuntimeError("crashed after the first step")
    return [info.attempt, done]


@nc.workflow
async def runs_resumable_slowly() -> list:
    return await resumable_slowly(3)


@pytest.mark.duckdb
def test_the_checkpoint_reaches_the_retry_across_a_restart(db_path):
    with nc.Engine(db_path) as eng:
        h = eng.start(runs_resumable_slowly, id="slow-resume")
        wait_for(
            lambda: any(e.kind is EventKind.TASK_FAILED for e in h.history()),
            what="the first attempt's failure",
        )
    with nc.Engine(db_path) as eng:
        assert eng.get("slow-resume").result(timeout=10) == [2, 1]


# --- error details travel as values ------------------------------------------------------


@nc.task(retry=nc.Retry(max_attempts=1))
def declines_card(order: str) -> None:
    raise nc.ApplicationError("card declined", details={"order": order, "codes": (51, 5)})


@nc.workflow
async def reads_task_details() -> dict:
    try:
        await declines_card("A-1")
    except nc.TaskFailed as exc:
        return exc.details
    return {}


@nc.workflow
async def fails_with_details(order: str) -> None:
    raise nc.ApplicationError("out of stock", details={"order": order, "left": 0})


@nc.workflow
async def reads_child_details() -> dict:
    try:
        await nc.child(fails_with_details, "C-3")
    except nc.ChildFailed as exc:
        return exc.details
    return {}


@pytest.mark.duckdb
def test_application_error_details_reach_workflows_and_callers_as_values(engine):
    assert engine.start(reads_task_details).result(timeout=10) == {
        "order": "A-1",
        "codes": (51, 5),  # a tuple stays a tuple: the codec carries it
    }
    assert engine.start(reads_child_details).result(timeout=10) == {"order": "C-3", "left": 0}
    h = engine.start(fails_with_details, "B-2")
    with pytest.raises(nc.ExecutionFailed) as info:
        h.result(timeout=10)
    assert info.value.details == {"order": "B-2", "left": 0}


def test_error_details_show_in_the_view_and_the_cli(engine):
    h = engine.start(fails_with_details, "V-9")
    with pytest.raises(nc.ExecutionFailed):
        h.result(timeout=10)
    shown = EngineOperations(engine).call("show", id=h.id)
    assert shown["error"]["details"] == {"order": "V-9", "left": 0}
    assert 'details:    {"order": "V-9", "left": 0}' in execution_text(shown)
    view = render(ExecutionReader(engine, h.id).read(), live=False)
    assert "details: {&quot;order&quot;: &quot;V-9&quot;" in view


# --- a closed execution answers from its final state -----------------------------------


@nc.workflow
async def tallies(n: int) -> int:
    nc.state["count"] = n
    nc.state["at"] = nc.now()  # any value the codec stores
    if n < 0:
        nc.state["lock"] = threading.Lock()  # cannot be stored: the state is not kept
    return n


@tallies.query
def count(state):
    return state["count"]


@pytest.mark.duckdb
def test_a_closed_execution_answers_queries_from_its_final_state_across_a_restart(db_path):
    with nc.Engine(db_path) as eng:
        h = eng.start(tallies, 3, id="tally")
        assert h.result(timeout=10) == 3
        assert h.query("count") == 3
        final = h.state
        assert final["count"] == 3 and final["at"].tzinfo is not None
        unkept = eng.start(tallies, -1, id="tally-unkept")
        assert unkept.result(timeout=10) == -1
    with nc.Engine(db_path) as eng:
        assert eng.get("tally").query("count") == 3
        assert eng.get("tally").state == final
        for read in (
            lambda: eng.get("tally-unkept").query("count"),
            lambda: eng.state_of("tally-unkept"),
        ):
            with pytest.raises(nc.ExecutionClosed, match="final state was not kept"):
                read()


# --- a timed-out async task cleans up before the workflow sees the timeout --------------

FINALLY_RAN: list[str] = []


@nc.task(timeout="200ms", retry=nc.Retry(max_attempts=1))
async def slow_async_upload(name: str) -> str:
    try:
        await asyncio.sleep(30)
    finally:
        FINALLY_RAN.append(name)  # cleanup: remove the half-written file, say
    return name


@nc.workflow
async def uploads_with_deadline() -> list:
    try:
        await slow_async_upload("report.csv")
    except nc.TaskFailed as exc:
        # Test-only peek at the outside world: the cleanup must already have run.
        return [exc.error_type, list(FINALLY_RAN)]
    return []


def test_a_timed_out_async_task_runs_its_finally_before_the_workflow_sees_it(engine):
    FINALLY_RAN.clear()
    result = engine.start(uploads_with_deadline).result(timeout=10)
    assert result == ["TaskTimeout", ["report.csv"]]


# --- a cleanup that overruns the grace period is cut off at the limit -------------------

OVERRUN: dict = {"log": []}


@nc.task(timeout="200ms", retry=nc.Retry(max_attempts=1))
async def overrunning_cleanup() -> str:
    loop, release = asyncio.get_running_loop(), asyncio.Event()
    OVERRUN["release"] = lambda: loop.call_soon_threadsafe(release.set)
    OVERRUN["running"].set()
    try:
        await asyncio.sleep(3600)
    finally:
        OVERRUN["log"].append("cleanup started")
        with anyio.CancelScope(shield=True):  # a cleanup that ignores the cancellation
            await release.wait()
        OVERRUN["log"].append("cleanup finished")
    return "never"


@nc.workflow
async def waits_past_an_overrunning_cleanup() -> list:
    try:
        await overrunning_cleanup()
    except nc.TaskFailed as exc:
        # Test-only peek: the workflow goes on while the cleanup is still running.
        return [exc.error_type, list(OVERRUN["log"])]
    return []


def test_a_cleanup_that_overruns_the_grace_period_is_cut_off_at_the_limit(skipping_engine):
    OVERRUN.update(log=[], running=threading.Event())
    eng = skipping_engine
    h = eng.start(waits_past_an_overrunning_cleanup)
    assert OVERRUN["running"].wait(10), "the async task never started"
    started = eng.clock.now()
    try:
        # The start-to-close timeout falls due: the attempt is cancelled and its cleanup
        # starts, and blocks. The cleanup counts as running: the clock does not jump.
        advance(eng, started + timedelta(milliseconds=200))
        wait_for(lambda: OVERRUN["log"] == ["cleanup started"], what="the cleanup")
        almost = started + timedelta(seconds=0.2 + CLEANUP_GRACE - 0.01)
        advance(eng, almost)
        assert h.status is Status.RUNNING  # the workflow still waits for the cleanup
        assert not any(e.kind is EventKind.TASK_FAILED for e in h.history())
        advance(eng, started + timedelta(seconds=0.2 + CLEANUP_GRACE))  # the grace is over
        assert h.result(timeout=10) == ["TaskTimeout", ["cleanup started"]]
    finally:
        OVERRUN["release"]()
    failed = next(e for e in h.history() if e.kind is EventKind.TASK_FAILED)
    assert abs((failed.at - started).total_seconds() - (0.2 + CLEANUP_GRACE)) < 1e-3
    assert '"timeout":"start_to_close"' in failed.data
    wait_for(lambda: OVERRUN["log"][-1:] == ["cleanup finished"], what="the late cleanup")


# --- details behind an uncaught TaskFailed reach the caller and the views ----------------


@nc.workflow
async def lets_task_details_through() -> None:
    await declines_card("D-4")  # not caught: the execution fails with the TaskFailed


def test_details_of_an_uncaught_task_failure_reach_the_caller_and_the_view(engine):
    h = engine.start(lets_task_details_through)
    with pytest.raises(nc.ExecutionFailed) as info:
        h.result(timeout=10)
    assert info.value.details == {"order": "D-4", "codes": (51, 5)}
    shown = EngineOperations(engine).call("show", id=h.id)
    assert shown["error"]["type"] == "TaskFailed"
    assert shown["error"]["details"]["order"] == "D-4"
    view = render(ExecutionReader(engine, h.id).read(), live=False)
    step = view[view.index("declines_card") :]
    assert "ApplicationError: card declined" in step and "D-4" in step[:400]
