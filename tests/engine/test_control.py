"""Cancel, terminate, children, continue-as-new, sagas, patches and forks."""

from __future__ import annotations

import asyncio
import threading

import pytest

import nbconductor as nc
from nbconductor.engine.engine import Engine
from nbconductor.engine.payload import read_data
from nbconductor.errors import ChildFailed, ExecutionFailed
from nbconductor.storage.records import EventKind, Status
from nbconductor.testing import wait_for

RELEASE = threading.Event()
RUNS: list[str] = []


@pytest.fixture(autouse=True)
def _reset():
    RELEASE.clear()
    RUNS.clear()
    yield
    RELEASE.set()


def kinds(handle) -> list[EventKind]:
    return [e.kind for e in handle.history()]


@nc.task
def record(step: str) -> str:
    RUNS.append(step)
    return step


@nc.task
def blocking(step: str) -> str:
    RUNS.append(step)
    while not RELEASE.wait(0.01):
        nc.heartbeat()  # raises TaskCancelled once the workflow stops needing us
    return step


# --- cancel ---------------------------------------------------------------------------


@nc.workflow
async def cleans_up() -> str:
    try:
        await nc.sleep("1 day")
    except asyncio.CancelledError:
        await record("cleanup")
        raise
    return "slept"


@pytest.mark.duckdb
def test_cancel_during_sleep_runs_cleanup_then_ends_cancelled(engine):
    h = engine.start(cleans_up)
    wait_for(lambda: EventKind.TIMER_STARTED in kinds(h), what="the sleep")
    h.cancel()
    with pytest.raises(ExecutionFailed, match="Cancelled"):
        h.result(timeout=10)
    assert h.status is Status.CANCELLED
    assert RUNS == ["cleanup"]
    assert EventKind.TIMER_CANCELLED in kinds(h)


@nc.workflow
async def shrugs_off_cancel() -> str:
    try:
        await blocking("long")
    except asyncio.CancelledError:
        return "cancelled gracefully"
    return "finished"


def test_cancel_during_task_asks_the_task_to_stop(engine):
    h = engine.start(shrugs_off_cancel)
    wait_for(lambda: RUNS == ["long"], what="the task to start")
    h.cancel()
    assert h.result(timeout=10) == "cancelled gracefully"
    assert h.status is Status.COMPLETED
    assert EventKind.TASK_CANCEL_REQUESTED in kinds(h)


@nc.workflow
async def sleepy_child() -> str:
    await nc.sleep("1 day")
    return "child done"


@nc.workflow
async def parent_of_sleepy() -> str:
    return await nc.child(sleepy_child, id="the-child")


def test_cancel_during_child_cancels_the_child(engine):
    h = engine.start(parent_of_sleepy)
    wait_for(lambda: EventKind.CHILD_STARTED in kinds(h), what="the child")
    child = engine.get("the-child")
    wait_for(lambda: EventKind.TIMER_STARTED in kinds(child), what="the child's sleep")
    assert child.describe().parent_id == h.id
    h.cancel()
    with pytest.raises(ExecutionFailed, match="Cancelled"):
        h.result(timeout=10)
    with pytest.raises(ExecutionFailed, match="Cancelled"):
        child.result(timeout=10)
    assert EventKind.CHILD_CANCEL_REQUESTED in kinds(h)


# --- terminate ------------------------------------------------------------------------


@nc.task(retry=nc.Retry(initial=0.05, backoff=1.0))
def keeps_failing() -> None:
    RUNS.append("attempt")
    raise ConnectionError("still down")


@nc.workflow
async def retrying_forever() -> None:
    try:
        await keeps_failing()
    finally:
        RUNS.append("workflow code ran")


def test_terminate_during_retrying_task(engine):
    h = engine.start(retrying_forever)
    wait_for(lambda: RUNS.count("attempt") >= 2, what="a retry")
    h.terminate("operator gave up")
    with pytest.raises(ExecutionFailed, match="Terminated: operator gave up"):
        h.result(timeout=10)
    attempts = RUNS.count("attempt")
    assert "workflow code ran" not in RUNS  # terminate runs no more workflow code
    assert kinds(h)[-1] is EventKind.EXECUTION_TERMINATED
    # no retry fires after termination
    engine.start(sequence_marker).result(timeout=10)
    assert RUNS.count("attempt") in (attempts, attempts + 1)  # one may have been in flight


@nc.workflow
async def sequence_marker() -> str:
    return await record("marker")


# --- children -------------------------------------------------------------------------


@nc.workflow
async def adder(a: int, b: int) -> int:
    return await record_sum(a, b)


@nc.task
def record_sum(a: int, b: int) -> int:
    return a + b


@nc.task(retry=nc.Retry(max_attempts=1))
def explode() -> None:
    raise RuntimeError("kaboom")


@nc.workflow
async def failing_child() -> None:
    await explode()


@nc.workflow
async def family() -> dict:
    total = await adder(2, 3)  # calling a workflow inside a workflow runs it as a child
    handle = nc.start_child(adder, 10, 20, id="family-second")
    second = await handle
    try:
        await nc.child(failing_child)
    except ChildFailed as exc:
        failed = exc.status
    return {"total": total, "second": second, "failed": failed}


@pytest.mark.duckdb
def test_children(engine):
    h = engine.start(family, id="family")
    assert h.result(timeout=10) == {"total": 5, "second": 30, "failed": "failed"}
    children = engine.list(name="adder")
    assert {c.id for c in children} == {"family/1", "family-second"}
    assert all(c.parent_id == "family" for c in children)
    started = [
        read_data(e.data)["child_id"] for e in h.history() if e.kind is EventKind.CHILD_STARTED
    ]
    assert started == ["family/1", "family-second", "family/3"]


@nc.workflow
async def leaves_children(policy: str) -> str:
    nc.start_child(sleepy_child, id=f"left-{policy}", parent_close=policy)
    await nc.sleep(0.01)
    return "parent done"


def test_parent_close_policies(engine):
    assert engine.start(leaves_children, "terminate").result(timeout=10) == "parent done"
    assert engine.start(leaves_children, "abandon").result(timeout=10) == "parent done"
    assert engine.start(leaves_children, "request_cancel").result(timeout=10) == "parent done"
    wait_for(lambda: engine.get("left-terminate").status is Status.TERMINATED, what="terminate")
    wait_for(lambda: engine.get("left-request_cancel").status is Status.CANCELLED, what="cancel")
    assert engine.get("left-abandon").status is Status.RUNNING


def test_child_across_restart(db_path):
    eng = Engine(db_path)
    h = eng.start(parent_of_sleepy, id="restart-parent")
    wait_for(lambda: EventKind.CHILD_STARTED in kinds(h), what="the child")
    wait_for(lambda: EventKind.TIMER_STARTED in kinds(eng.get("the-child")), what="its sleep")
    eng.stop(grace=0)
    eng = Engine(db_path)
    try:
        eng.terminate("the-child", "no need")
        with pytest.raises(ExecutionFailed, match="ChildFailed"):
            eng.get("restart-parent").result(timeout=10)
    finally:
        eng.stop(grace=0)
    assert h.id == "restart-parent"


# --- continue-as-new ------------------------------------------------------------------


@nc.workflow
async def countdown(n: int, total: int = 0) -> int:
    total += await record_sum(total, 1) - total
    if n > 1:
        nc.continue_as_new(n - 1, total)
    return total


def test_continue_as_new_chain_of_100(skipping_engine):
    h = skipping_engine.start(countdown, 100, id="chain")
    assert h.result(timeout=30) == 100
    runs = skipping_engine.list(name="countdown", limit=None)
    assert len(runs) == 100
    assert max(len(skipping_engine.history(r.id)) for r in runs) <= 5  # bounded per run
    second = skipping_engine.describe("chain#2")
    assert second.origin_id == "chain"
    assert skipping_engine.describe("chain").status is Status.CONTINUED_AS_NEW
    assert skipping_engine.get("chain#50").result(timeout=5) == 100  # followable from any run


@nc.workflow
async def parent_of_chain() -> int:
    return await nc.child(countdown, 5)


@pytest.mark.duckdb
def test_parent_awaits_the_chain(engine):
    assert engine.start(parent_of_chain).result(timeout=10) == 5


# --- sagas ----------------------------------------------------------------------------


@nc.task(retry=nc.Retry(max_attempts=1))
def step(name: str, fail: bool = False) -> str:
    RUNS.append(name)
    if fail:
        raise nc.ApplicationError(f"{name} failed", non_retryable=True)
    return name


@nc.task(retry=nc.Retry(max_attempts=1))
def undo(name: str, fail: bool = False) -> None:
    RUNS.append(f"undo {name}")
    if fail:
        raise RuntimeError(f"could not undo {name}")


@nc.workflow
async def order_saga(fail_at: int, bad_undo: str = "") -> str:
    async with nc.Saga() as saga:
        for i, name in enumerate(["payment", "inventory", "shipping", "confirmation"], 1):
            await step(name, fail=(i == fail_at))
            saga.add(undo, name, fail=(name == bad_undo))
    return "ok"


def test_saga_compensates_in_reverse_after_failure_at_step_3(engine):
    with pytest.raises(ExecutionFailed, match="shipping failed"):
        engine.start(order_saga, 3, "payment").result(timeout=10)
    assert RUNS == ["payment", "inventory", "shipping", "undo inventory", "undo payment"]


@nc.workflow
async def cancellable_saga() -> str:
    async with nc.Saga() as saga:
        await step("payment")
        saga.add(undo, "payment")
        await blocking("inventory")
    return "ok"


def test_saga_compensates_on_cancel(engine):
    h = engine.start(cancellable_saga)
    wait_for(lambda: "inventory" in RUNS, what="the second step")
    h.cancel()
    with pytest.raises(ExecutionFailed, match="Cancelled"):
        h.result(timeout=10)
    assert RUNS == ["payment", "inventory", "undo payment"]


# --- patched --------------------------------------------------------------------------


def define_patchable(with_patch: bool):
    if with_patch:

        @nc.workflow(name="patchable")
        async def patchable() -> list:
            first = await record("a")
            if nc.patched("new-b"):
                second = await record("new b")
            else:
                second = await record("old b")
            await nc.signal("go")
            return [first, second]

    else:

        @nc.workflow(name="patchable")
        async def patchable() -> list:
            first = await record("a")
            second = await record("old b")
            await nc.signal("go")
            return [first, second]

    return patchable


def test_patched_old_and_new_executions(db_path):
    old_code = define_patchable(False)
    eng = Engine(db_path)
    old = eng.start(old_code, id="old-run")
    wait_for(lambda: old.waiting_for == ["go"], what="the old run to wait")
    eng.stop(grace=0)
    new_code = define_patchable(True)
    eng = Engine(db_path)
    try:
        new = eng.start(new_code, id="new-run")
        wait_for(lambda: new.waiting_for == ["go"], what="the new run to wait")
        eng.signal("old-run", "go")
        eng.signal("new-run", "go")
        # Replaying the old run with the new code keeps the branch it recorded.
        assert eng.get("old-run").result(timeout=10) == ["a", "old b"]
        assert eng.get("new-run").result(timeout=10) == ["a", "new b"]
        markers = [e.name for e in eng.history("new-run") if e.kind is EventKind.MARKER_RECORDED]
        assert markers == ["patch:new-b"]
        assert eng.get("old-run").condition is None
    finally:
        eng.stop(grace=0)


# --- fork -----------------------------------------------------------------------------

BROKEN = {"flag": True}


@nc.task(retry=nc.Retry(max_attempts=1))
def fragile(i: int) -> int:
    RUNS.append(f"fragile {i}")
    if i == 2 and BROKEN["flag"]:
        raise ValueError("bug in step 2")
    return i


@nc.workflow
async def three_steps() -> list:
    return [await fragile(i) for i in range(3)]


@pytest.mark.duckdb
def test_fork_reruns_from_the_failed_task(engine):
    h = engine.start(three_steps, id="to-fork")
    with pytest.raises(ExecutionFailed, match="bug in step 2"):
        h.result(timeout=10)
    BROKEN["flag"] = False
    try:
        forked = h.fork()
        assert forked.result(timeout=10) == [0, 1, 2]
    finally:
        BROKEN["flag"] = True
    assert RUNS == ["fragile 0", "fragile 1", "fragile 2", "fragile 2"]
    assert forked.describe().origin_id == "to-fork"
    with pytest.raises(ValueError, match="fork point"):
        h.fork(at=999)


# --- fixing code while executions run ---------------------------------------------


def define_flaky_step(works: bool):
    @nc.task(name="fixable", retry=nc.Retry(initial=0.05, backoff=1.0, max_attempts=50))
    def fixable() -> str:
        RUNS.append("fixed" if works else "broken")
        if not works:
            raise ValueError("bug")
        return "fixed"

    return fixable


@nc.workflow
async def uses_fixable() -> str:
    return await nc.engine.definition.REGISTRY.find("task", "fixable")()


def test_a_fixed_task_cell_is_used_by_the_next_retry(engine):
    define_flaky_step(works=False)
    h = engine.start(uses_fixable)
    wait_for(lambda: RUNS.count("broken") >= 2, what="a failed retry")
    define_flaky_step(works=True)  # the user re-runs the fixed %%task cell
    assert h.result(timeout=10) == "fixed"


@nc.task(retry=nc.Retry(max_attempts=1))
def fails_on_demand(value: str) -> str:
    if BROKEN["flag"]:
        raise ValueError("not yet")
    return value


@nc.workflow
async def random_then_fails() -> list:
    token = str(nc.uuid4())
    first = await fragile(0)
    return [token, nc.random(), first, await fails_on_demand(token)]


def test_fork_keeps_the_origins_random_values(engine):
    h = engine.start(random_then_fails)
    with pytest.raises(ExecutionFailed):
        h.result(timeout=10)
    BROKEN["flag"] = False
    try:
        result = h.fork().result(timeout=10)
    finally:
        BROKEN["flag"] = True
    assert result[0] == result[3]
    # The fork's uuid is the one the origin recorded in the failed task's input.
    scheduled = [e for e in h.history() if e.kind is EventKind.TASK_SCHEDULED]
    assert result[0] in scheduled[-1].data


def test_rescan_resumes_blocked_executions(db_path, registry):
    eng = Engine(db_path)
    h = eng.start(cleans_up, id="rescan-me")
    wait_for(lambda: EventKind.TIMER_STARTED in kinds(h), what="the sleep")
    eng.stop(grace=0)
    saved = registry.forget("workflow", "cleans_up")
    eng = Engine(db_path)
    try:
        assert eng.rescan() == []
        registry.restore(saved)  # back, without a listener call
        assert eng.rescan() == ["rescan-me"]
        assert eng.get("rescan-me").condition is None
    finally:
        eng.stop(grace=0)


@nc.workflow
async def parallel_saga() -> str:
    async with nc.Saga(parallel_compensation=True) as saga:
        for name in ("payment", "inventory", "shipping"):
            await step(name)
            saga.add(undo, name, fail=(name == "inventory"))
        await step("confirmation", fail=True)
    return "ok"


def test_parallel_compensation_runs_every_undo_even_when_one_fails(engine):
    with pytest.raises(ExecutionFailed, match="confirmation failed"):
        engine.start(parallel_saga).result(timeout=10)
    undone = sorted(r for r in RUNS if r.startswith("undo"))
    assert undone == ["undo inventory", "undo payment", "undo shipping"]


def define_deprecated(with_marker_check: bool):
    @nc.workflow(name="deprecating")
    async def deprecating() -> str:
        if with_marker_check:
            nc.deprecate_patch("new-b")
        else:
            nc.patched("new-b")
        await nc.signal("go")
        return await record("b")

    return deprecating


def test_deprecate_patch_keeps_patched_histories_replaying(db_path):
    eng = Engine(db_path)
    h = eng.start(define_deprecated(False), id="had-patch")
    wait_for(lambda: h.waiting_for == ["go"], what="the wait")
    eng.stop(grace=0)
    define_deprecated(True)  # the old branch is gone; the patch call is deprecated
    eng = Engine(db_path)
    try:
        fresh = eng.start(define_deprecated(True), id="after-deprecation")
        wait_for(lambda: fresh.waiting_for == ["go"], what="the new run")
        eng.signal("had-patch", "go")
        eng.signal("after-deprecation", "go")
        assert eng.get("had-patch").result(timeout=10) == "b"
        assert eng.get("after-deprecation").result(timeout=10) == "b"
        new_markers = [
            e for e in eng.history("after-deprecation") if e.kind is EventKind.MARKER_RECORDED
        ]
        assert new_markers == []
    finally:
        eng.stop(grace=0)


def test_a_handle_follows_its_continue_as_new_chain(skipping_engine):
    h = skipping_engine.start(countdown, 3, id="short-chain")
    assert h.result(timeout=10) == 3
    assert h.latest_run == "short-chain#3"
    assert h.status is Status.COMPLETED
