"""DaskRunner on a real LocalCluster of worker processes: attempts recorded with their
worker, a killed worker as WorkerLost, heartbeats and cancellation from the workers, a
worker that lacks a module.

One two-worker cluster serves the module; the scheduler's allowed-failures is 0 so a
dead worker fails its task at once (the runner also detects a re-run: see the module).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import dask
import printing_tasks
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
def killed_once(marker: str, at_once: bool) -> str:
    if not os.path.exists(marker):
        with open(marker + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(marker + ".tmp", marker)
        if at_once:  # before the worker sends on that the attempt started
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)  # killed meanwhile
    return "second attempt"


@nc.workflow
async def rerun_flow(marker: str, at_once: bool) -> str:
    return await killed_once(marker, at_once)


@pytest.mark.parametrize("at_once", [False, True], ids=["killed-later", "killed-at-once"])
def test_a_rerun_by_dask_is_detected_and_fails_the_attempt(db_path, tmp_path, at_once):
    # Killed later, the dead worker said the attempt started and the re-run's "started"
    # gives it away; killed at once, it may not have, and the scheduler's count of
    # workers that died running the key does.
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
            h = engine.start(rerun_flow, str(marker), at_once)
            wait_for(marker.exists, timeout=60, what="the attempt to start on a worker")
            if not at_once:
                os.kill(int(marker.read_text()), signal.SIGKILL)
            assert h.result(timeout=60) == "second attempt"
            (failed,) = ended(h.history(), EventKind.TASK_FAILED)
            assert failed["error"]["type"] == "WorkerLost"
            assert "re-ran it" in failed["error"]["message"]
            # The re-run is not the attempt: the workflow's result came from a retry.
            (completed,) = [e for e in h.history() if e.kind is EventKind.TASK_COMPLETED]
            assert completed.attempt == 2
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


@nc.task(
    runner="cluster",
    resources={"NBC_ABSENT": 1},
    schedule_to_start=0.5,
    retry=nc.Retry(max_attempts=1),
)
def never_placed() -> str:
    return "ran"


@nc.task(runner="cluster", heartbeat=0.5, retry=nc.Retry(max_attempts=1))
def silent_on_worker(seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not nc.cancelled():
        time.sleep(0.02)  # the work being simulated, with no heartbeat
    return "late"


@nc.task(runner="cluster", schedule_to_close=0.8, retry=nc.Retry(initial=0.01))
def past_its_deadline_on_worker(marker: str) -> str:
    deadline = time.monotonic() + 20
    while not nc.cancelled() and time.monotonic() < deadline:
        time.sleep(0.02)  # polling the flag is what a long task does
    with open(marker, "w") as f:
        f.write("cancelled" if nc.cancelled() else "never told")
    return "late"


@nc.workflow
async def dask_timeouts(which: str, marker: str) -> str:
    step = {
        "schedule_to_start": never_placed,
        "heartbeat": lambda: silent_on_worker(20),
        "schedule_to_close": lambda: past_its_deadline_on_worker(marker),
    }[which]
    try:
        return await step()
    except TaskFailed as exc:
        return exc.error_type


@pytest.mark.parametrize("which", ["schedule_to_start", "heartbeat", "schedule_to_close"])
def test_each_timeout_is_kept_by_the_engine_on_dask(eng, tmp_path, which):
    # start_to_close: test_heartbeats_reach_the_engine_and_a_timed_out_attempt_is_cancelled.
    # schedule_to_start: no worker has the resource, so the attempt never starts.
    marker = tmp_path / "seen"
    h = eng.start(dask_timeouts, which, str(marker))
    assert h.result(timeout=60) == "TaskTimeout"
    (failed,) = ended(h.history(), EventKind.TASK_FAILED)
    assert (failed["error"]["timeout"], failed["final"]) == (which, True)
    if which == "schedule_to_start":
        assert "worker" not in failed or not failed["worker"]  # it never ran anywhere
    if which == "schedule_to_close":
        wait_for(lambda: marker.exists() and marker.read_text(), timeout=20, what="the marker")
        assert marker.read_text() == "cancelled"


DASK_CRASH_FLOWS = """
import os, time
import nbconductor as nc

@nc.task(runner="far", retry=nc.Retry(initial=0.01, max_attempts=3))
def far_long_step(marker: str) -> str:
    info = nc.task_info()
    if os.path.exists(marker):
        return f"attempt {info.attempt} on pid {os.getpid()}"
    with open(marker + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(marker + ".tmp", marker)
    deadline = time.monotonic() + 60  # the engine's process is killed meanwhile
    while not nc.cancelled() and time.monotonic() < deadline:
        time.sleep(0.02)
    with open(marker + ".stopped", "w") as f:
        f.write("cancelled" if nc.cancelled() else "never told")
    return "the abandoned first attempt"

@nc.workflow
async def far_crash_flow(marker: str) -> str:
    return await far_long_step(marker)
"""


def test_a_killed_engine_process_is_recovered_and_its_remote_attempt_abandoned(
    client, tmp_path, registry, monkeypatch, request
):
    (tmp_path / "dask_crash_flows.py").write_text(DASK_CRASH_FLOWS)
    monkeypatch.syspath_prepend(str(tmp_path))
    request.addfinalizer(lambda: sys.modules.pop("dask_crash_flows", None))
    address = client.scheduler.address
    db, marker = tmp_path / "h.duckdb", tmp_path / "attempt-1"
    committed = tmp_path / "committed"
    # The workers cannot import the flows' module: it travels by value, as a notebook's.
    script = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
        "import time, cloudpickle, nbconductor as nc, dask_crash_flows as f\n"
        "cloudpickle.register_pickle_by_value(f)\n"
        f"eng = nc.Engine({str(db)!r}, runners={{'far': nc.DaskRunner({address!r})}})\n"
        f"eng.start(f.far_crash_flow, {str(marker)!r}, id='d-1')\n"
        # An attempt may start before the batch that scheduled it is durable (pipelined
        # commits): the kill must come after the start is in the file.
        "eng.ping()\n"
        f"open({str(committed)!r}, 'w').close()\n"
        "time.sleep(300)\n"
    )
    engine_process = subprocess.Popen([sys.executable, "-c", script])
    try:
        wait_for(committed.exists, timeout=60, what="the start to be committed")
        wait_for(marker.exists, timeout=60, what="the attempt to start on a worker")
        first_pid = int(marker.read_text())
    finally:
        engine_process.kill()  # SIGKILL: no atexit, no clean stop
        engine_process.wait(10)
    killed_at = datetime.now(UTC)
    # Its client is gone, so the scheduler releases the attempt: nc.cancelled() turns true.
    stopped = tmp_path / "attempt-1.stopped"
    wait_for(lambda: stopped.exists() and stopped.read_text(), timeout=30, what="the stop")
    assert stopped.read_text() == "cancelled"

    import cloudpickle
    import dask_crash_flows

    cloudpickle.register_pickle_by_value(dask_crash_flows)
    request.addfinalizer(lambda: cloudpickle.unregister_pickle_by_value(dask_crash_flows))
    engine = Engine(db, runners={"far": nc.DaskRunner(client)}, make_default=False)
    try:
        h = engine.get("d-1")
        # The recovered engine dispatched the attempt again; the first one's return
        # value went to a client that no longer exists and is not the result.
        out = h.result(timeout=60)
        assert out.startswith("attempt ") and "abandoned" not in out
        completed = ended(h.history(), EventKind.TASK_COMPLETED)
        assert len(completed) == 1  # the attempt never ended before: at least once
        assert datetime.fromisoformat(completed[0]["started_at"]) > killed_at  # sent again
        assert completed[0]["worker"] in client.scheduler_info()["workers"]
        assert int(out.rsplit(" ", 1)[1]) in _worker_pids(client)
        assert first_pid in _worker_pids(client)  # a worker that lived on, not a crash
    finally:
        engine.stop(grace=0)


def _worker_pids(client) -> set[int]:
    return set(client.run(os.getpid).values())


_TRACER: list = []  # the worker's own OpenTelemetry set-up, made once per process


@nc.task(runner="cluster")
def dask_opens_a_span() -> tuple:
    from opentelemetry.sdk.trace import TracerProvider

    if not _TRACER:
        _TRACER.append(TracerProvider().get_tracer("user-code"))
    with _TRACER[0].start_as_current_span("inside the worker") as span:
        pass
    return format(span.context.trace_id, "032x"), format(span.parent.span_id, "016x")


@nc.workflow
async def dask_traced() -> tuple:
    return await dask_opens_a_span()


def test_a_span_a_task_opens_on_a_worker_is_a_child_of_its_attempt(eng):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from nbconductor.telemetry import instrument

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    stop = instrument(eng, tracer_provider=provider)
    try:
        trace_id, parent_id = eng.start(dask_traced).result(timeout=60)
        spans = wait_for(
            lambda: (s := exporter.get_finished_spans()) and len(s) >= 2 and s, 20, "spans"
        )
    finally:
        stop()
    (attempt,) = [s for s in spans if s.name == "task dask_opens_a_span"]
    assert trace_id == format(attempt.context.trace_id, "032x")
    assert parent_id == format(attempt.context.span_id, "016x")
    assert attempt.attributes["nbconductor.worker"].startswith("tcp://")


chatty_remote = nc.task(runner="cluster", name="chatty_remote")(printing_tasks.chatty_body)


@nc.workflow
async def chatty_on_cluster(gate: str) -> int:
    return await chatty_remote(gate)


def test_what_a_task_prints_on_a_worker_reaches_its_execution_log(eng, tmp_path):
    # The last line comes with the result (an event could have come after it).
    printing_tasks.check_printed_lines_arrive(
        lambda gate: eng.start(chatty_on_cluster, gate), tmp_path / "gate", timeout=60
    )


DECODED_ON: list[str] = []  # the threads of this process that rebuilt a Shipment


@dataclasses.dataclass
class Shipment:
    rows: int

    def __post_init__(self) -> None:
        DECODED_ON.append(threading.current_thread().name)


@nc.task(runner="cluster")
def count_rows(shipment: Shipment) -> int:
    return shipment.rows


@nc.workflow
async def ship(shipment: Shipment) -> int:
    return await count_rows(shipment)


def test_an_attempts_arguments_are_loaded_and_sent_off_the_engine_thread(eng):
    # Loading a stored frame and pickling it take as long as the data is large: the
    # engine thread, which every workflow shares, must not wait for it.
    DECODED_ON.clear()
    assert eng.start(ship, Shipment(3)).result(timeout=60) == 3
    assert DECODED_ON[-1] == "nbconductor-dask-submit", DECODED_ON
