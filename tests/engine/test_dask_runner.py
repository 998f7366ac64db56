"""DaskRunner on a real LocalCluster of worker processes: attempts recorded with their
worker, a killed worker as WorkerLost, heartbeats and cancellation from the workers, a
worker that lacks a module.

One two-worker cluster serves the module; the scheduler's allowed-failures is 0 so a
dead worker fails its task at once (the runner also detects a re-run: see the module).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

import dask
import pytest
from distributed import Client, LocalCluster
from distributed.core import Status

import nbconductor as nc
from nbconductor.engine.engine import Engine
from nbconductor.engine.payload import read_data
from nbconductor.errors import TaskFailed
from nbconductor.storage.records import EventKind
from nbconductor.testing import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client():
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=":0"
        )
    client = Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


@pytest.fixture
def eng(client, db_path):
    engine = Engine(db_path, runners={"cluster": nc.DaskRunner(client)}, make_default=False)
    yield engine
    engine.stop(grace=0)


def ended(history, kind):
    return [read_data(e.data) for e in history if e.kind is kind]


@nc.task(runner="cluster")
def where(x: int) -> tuple:
    return os.getpid(), x + 1


@nc.workflow
async def on_cluster() -> tuple:
    return await where(41)


def test_an_attempt_runs_on_a_worker_and_records_which(eng, client):
    h = eng.start(on_cluster)
    pid, value = h.result(timeout=60)
    assert value == 42 and pid != os.getpid()
    (completed,) = ended(h.history(), EventKind.TASK_COMPLETED)
    assert completed["worker"] in client.scheduler_info()["workers"]


@nc.task(runner="cluster", retry=nc.Retry(initial=0.01, max_attempts=3))
def slow_first(marker: str) -> str:
    if not os.path.exists(marker):
        with open(marker + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(marker + ".tmp", marker)
        time.sleep(60)  # killed meanwhile
    return "survived"


@nc.workflow
async def survives_a_dead_worker(marker: str) -> str:
    return await slow_first(marker)


def test_a_killed_worker_fails_the_attempt_as_worker_lost(eng, tmp_path):
    marker = tmp_path / "pid"
    h = eng.start(survives_a_dead_worker, str(marker))
    wait_for(marker.exists, timeout=60, what="the attempt to start on a worker")
    os.kill(int(marker.read_text()), signal.SIGKILL)
    assert h.result(timeout=60) == "survived"
    (failed,) = ended(h.history(), EventKind.TASK_FAILED)
    assert failed["error"]["type"] == "WorkerLost"
    assert failed["final"] is False
    assert [d["worker"] for d in ended(h.history(), EventKind.TASK_COMPLETED)]


@nc.task(runner="cluster", heartbeat=1.0, retry=nc.Retry(max_attempts=1))
def beats_on_worker(seconds: float) -> int:
    n = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        nc.heartbeat(details=n)
        n += 1
        time.sleep(0.02)  # the work being simulated
    return n


@nc.task(runner="cluster", timeout=0.5, retry=nc.Retry(max_attempts=1))
def until_cancelled(marker: str) -> str:
    deadline = time.monotonic() + 20
    while not nc.cancelled() and time.monotonic() < deadline:
        time.sleep(0.02)  # polling the flag is what a long task does
    with open(marker, "w") as f:
        f.write("cancelled" if nc.cancelled() else "never told")
    return "stopped"


@nc.workflow
async def heartbeat_and_timeout(marker: str) -> list:
    out = [await beats_on_worker(2.5)]
    try:
        await until_cancelled(marker)
    except TaskFailed as exc:
        out.append(exc.error_type)
    return out


def test_heartbeats_reach_the_engine_and_a_timed_out_attempt_is_cancelled(eng, tmp_path):
    marker = tmp_path / "seen"
    h = eng.start(heartbeat_and_timeout, str(marker))
    count, error = h.result(timeout=60)
    assert count > 10 and error == "TaskTimeout"
    wait_for(lambda: marker.exists() and marker.read_text(), timeout=20, what="the marker")
    assert marker.read_text() == "cancelled"


def test_a_worker_without_the_task_module_is_reported_not_retried(
    eng, registry, tmp_path, monkeypatch, request
):
    (tmp_path / "only_in_kernel.py").write_text("def twice(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import only_in_kernel  # imported here, so pickled by reference: by name

    request.addfinalizer(lambda: sys.modules.pop("only_in_kernel", None))
    (tmp_path / "only_in_kernel.py").unlink()

    @nc.task(runner="cluster", retry=nc.Retry(initial=0.01, max_attempts=5))
    def dask_needs_module(x: int) -> int:
        return only_in_kernel.twice(x)

    @nc.workflow
    async def dask_uses_module() -> str:
        try:
            return str(await dask_needs_module(2))
        except TaskFailed as exc:
            return f"{exc.error_type} after {exc.attempts}: {exc.error_message}"

    out = eng.start(dask_uses_module).result(timeout=60)
    assert out.startswith("TaskNotLoadable after 1: ")
    assert "module 'only_in_kernel' is missing" in out


@nc.task(runner="doomed", retry=nc.Retry(max_attempts=1))
def outlives_its_scheduler(marker: str) -> str:
    open(marker, "w").close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not nc.cancelled():
        time.sleep(0.05)  # polling the flag is what a long task does
    return "done"


@nc.workflow
async def loses_the_scheduler(marker: str) -> str:
    try:
        return await outlives_its_scheduler(marker)
    except TaskFailed as exc:
        return f"{exc.error_type}: {exc.error_message}"


def test_a_stopped_scheduler_fails_the_attempt_saying_so(db_path, tmp_path):
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(n_workers=1, processes=True, dashboard_address=":0")
    # A short timeout: after the scheduler is gone the client tries to reconnect for
    # that long before it gives up on its futures.
    client = Client(cluster, set_as_default=False, timeout="3s")
    engine = Engine(db_path, runners={"doomed": nc.DaskRunner(client)}, make_default=False)
    try:
        marker = tmp_path / "running"
        h = engine.start(loses_the_scheduler, str(marker))
        wait_for(marker.exists, timeout=60, what="the attempt to run on the worker")
        cluster.sync(cluster.scheduler.close)
        out = h.result(timeout=60)
        assert out.startswith("WorkerLost: lost contact with the Dask scheduler at tcp://"), out
    finally:
        engine.stop(grace=0)
        client.close()
        # With its scheduler gone, cluster.close() would wait ~30 s for it: stop the
        # nannies (and their worker processes) directly, then give up on the rest.
        for nanny in list(cluster.workers.values()):
            cluster.sync(nanny.close, timeout=2)
        with contextlib.suppress(TimeoutError):
            cluster.close(timeout=3)
        # Its workers are gone and its scheduler closed: mark it so, or its __del__
        # warns "unclosed cluster" in whichever test runs next.
        cluster.status = Status.closed


@nc.task(runner="rerunning", retry=nc.Retry(initial=0.01, max_attempts=2))
def killed_once(marker: str) -> str:
    if not os.path.exists(marker):
        with open(marker + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(marker + ".tmp", marker)
        time.sleep(60)  # killed meanwhile
    return "second attempt"


@nc.workflow
async def rerun_flow(marker: str) -> str:
    return await killed_once(marker)


def test_a_rerun_by_dask_is_detected_and_fails_the_attempt(db_path, tmp_path):
    # allowed-failures 1: the scheduler re-runs a task whose worker died; the runner
    # warns about it, and counts such a re-run as a lost attempt, not as the attempt.
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
    client = Client(cluster, set_as_default=False)
    try:
        with pytest.warns(RuntimeWarning, match="re-runs a task up to 1 times"):
            runner = nc.DaskRunner(client)
        engine = Engine(db_path, runners={"rerunning": runner}, make_default=False)
        try:
            marker = tmp_path / "pid"
            h = engine.start(rerun_flow, str(marker))
            wait_for(marker.exists, timeout=60, what="the attempt to start on a worker")
            os.kill(int(marker.read_text()), signal.SIGKILL)
            assert h.result(timeout=60) == "second attempt"
            (failed,) = ended(h.history(), EventKind.TASK_FAILED)
            assert failed["error"]["type"] == "WorkerLost"
            assert "re-ran it" in failed["error"]["message"]
            (completed,) = ended(h.history(), EventKind.TASK_COMPLETED)
            assert completed["worker"] != failed["worker"]
        finally:
            engine.stop(grace=0)
    finally:
        client.close()
        cluster.close()


@nc.task(runner="cluster", retry=nc.Retry(initial=0.01, max_attempts=2))
def checkpoints_on_a_worker(rows: int) -> dict:
    info = nc.task_info()
    if info.attempt == 1:
        nc.heartbeat(details={"done": 3})
        time.sleep(0.6)  # the task's own work: lets the throttled heartbeat reach the engine
        raise ConnectionError("dropped after row 3")
    return {
        "execution_id": info.execution_id,
        "workflow": info.workflow,
        "attempt": info.attempt,
        "resumed_from": info.heartbeat_details,
    }


@nc.workflow
async def resumes_on_a_worker() -> dict:
    return await checkpoints_on_a_worker(10)


def test_task_info_on_a_worker_says_who_the_attempt_is(eng):
    h = eng.start(resumes_on_a_worker)
    info = h.result(timeout=60)
    assert info == {
        "execution_id": h.id,
        "workflow": "resumes_on_a_worker",
        "attempt": 2,
        "resumed_from": {"done": 3},
    }
