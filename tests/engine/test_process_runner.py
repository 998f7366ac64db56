"""The ``process`` runner: attempts in real child processes, crashes as failed attempts,
heartbeats and cancellation across the process boundary, and no hold on exit.

One ProcessRunner (two children) serves the whole module; each test's engine names it
``proc`` (the engine does not shut down runners it was given).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import printing_tasks
import pytest

import nbconductor as nc
from nbconductor.engine.engine import Engine
from nbconductor.engine.payload import read_data
from nbconductor.engine.runners import ProcessRunner
from nbconductor.errors import DefinitionError, TaskFailed
from nbconductor.storage.records import EventKind
from nbconductor.testing import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def procs():
    runner = ProcessRunner(max_workers=2, stop_grace=1.0)
    yield runner
    runner.shutdown()


@pytest.fixture
def eng(procs, db_path):
    engine = Engine(db_path, runners={"proc": procs}, make_default=False)
    yield engine
    engine.stop(grace=0)


def ended(history, kind):
    return [read_data(e.data) for e in history if e.kind is kind]


@nc.task(runner="proc")
def whoami(x: int) -> tuple:
    return os.getpid(), x * 2


@nc.workflow
async def two_pids() -> list:
    return [await whoami(1), await whoami(2)]


def test_attempts_run_in_a_child_process_and_record_the_worker(eng):
    h = eng.start(two_pids)
    (pid1, a), (pid2, b) = h.result(timeout=60)
    assert (a, b) == (2, 4)
    assert os.getpid() not in (pid1, pid2)
    workers = [d["worker"] for d in ended(h.history(), EventKind.TASK_COMPLETED)]
    assert workers == [f"pid {pid1}", f"pid {pid2}"]


@nc.task(runner="proc", retry=nc.Retry(initial=0.01, max_attempts=3))
def crashes_first(marker: str, how: str) -> str:
    if not os.path.exists(marker):
        open(marker, "w").close()
        if how == "segfault":
            import ctypes

            ctypes.string_at(0)  # reads address 0: SIGSEGV
        os._exit(3)
    return "survived"


@nc.workflow
async def crash_then_retry(marker: str, how: str) -> str:
    return await crashes_first(marker, how)


@pytest.mark.parametrize("how", ["segfault", "exit"])
def test_a_crashing_child_is_a_failed_attempt_and_the_retry_policy_decides(eng, tmp_path, how):
    h = eng.start(crash_then_retry, str(tmp_path / "crashed"), how)
    assert h.result(timeout=60) == "survived"
    (failed,) = ended(h.history(), EventKind.TASK_FAILED)
    assert failed["error"]["type"] == "WorkerLost"
    expected = "SIGSEGV" if how == "segfault" else "exit code 3"
    assert expected in failed["error"]["message"]
    assert failed["final"] is False


@nc.task(runner="proc", heartbeat=1.0, retry=nc.Retry(max_attempts=1))
def beats(seconds: float) -> int:
    n = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        nc.heartbeat(details=n, progress=0.5)
        n += 1
        time.sleep(0.02)  # the work being simulated
    return n


@nc.task(runner="proc", heartbeat=0.5, retry=nc.Retry(max_attempts=1))
def silent(seconds: float) -> str:
    time.sleep(seconds)  # the work being simulated, with no heartbeat
    return "late"


@nc.workflow
async def heartbeat_flow() -> list:
    out = [await beats(2.5)]
    try:
        await silent(10)
    except TaskFailed as exc:
        out.append(exc.error_type)
    return out


def test_heartbeats_from_a_child_reach_the_engine_and_silence_times_out(eng):
    h = eng.start(heartbeat_flow)
    count, error = h.result(timeout=60)
    assert count > 10  # ran 2.5 s past a 1 s heartbeat timeout: its beats arrived
    assert error == "TaskTimeout"
    (failed,) = ended(h.history(), EventKind.TASK_FAILED)
    assert failed["error"]["timeout"] == "heartbeat"


@nc.task(runner="proc", timeout=0.5, retry=nc.Retry(max_attempts=1))
def waits_for_cancel(marker: str) -> str:
    deadline = time.monotonic() + 20
    while not nc.cancelled() and time.monotonic() < deadline:
        time.sleep(0.02)  # polling the flag is what a long task does
    with open(marker, "w") as f:
        f.write("cancelled" if nc.cancelled() else "never told")
    return "stopped"


@nc.workflow
async def timeout_flow(marker: str) -> str:
    try:
        return await waits_for_cancel(marker)
    except TaskFailed as exc:
        return exc.error_type


def test_a_timed_out_attempt_sees_cancelled_in_its_process(eng, tmp_path):
    marker = tmp_path / "seen"
    h = eng.start(timeout_flow, str(marker))
    assert h.result(timeout=60) == "TaskTimeout"
    wait_for(marker.exists, timeout=20, what="the child to notice nc.cancelled()")
    wait_for(lambda: marker.read_text() != "", timeout=5, what="the marker written")
    assert marker.read_text() == "cancelled"


def test_a_task_for_another_process_names_the_variable_it_cannot_pickle(registry):
    lock = threading.Lock()
    with pytest.raises(DefinitionError, match="'lock'"):

        @nc.task(runner="process")
        def uses_lock() -> None:
            with lock:
                pass


def test_an_oversized_captured_global_is_named_when_defined_and_when_scheduled(eng, registry):
    # A local function, like a notebook's, travels by value with what it captures.
    big = np.zeros(10 * 2**20 // 8)  # 10 MB
    with pytest.raises(DefinitionError, match=r"the variable 'big' it uses is 10,485,"):

        @nc.task(runner="proc")
        def sums_big() -> float:
            return float(big.sum())

    table = np.zeros(4)

    @nc.task(runner="proc", retry=nc.Retry(initial=0.01, max_attempts=3))
    def sums_table() -> float:
        return float(table.sum())

    @nc.workflow
    async def oversized_when_scheduled() -> str:
        try:
            return str(await sums_table())
        except TaskFailed as exc:
            return f"{exc.error_type} after {exc.attempts}: {exc.error_message}"

    table = np.zeros(10 * 2**20 // 8)  # grown after the definition: caught when scheduled
    out = eng.start(oversized_when_scheduled).result(timeout=60)
    assert out.startswith("DefinitionError after 1: task 'sums_table' pickles to 10,48"), out
    assert "the variable 'table' it uses is 10,485," in out


def test_an_unknown_runner_fails_the_task_naming_the_known_ones(eng, registry):
    @nc.task(runner="nowhere")
    def lost() -> int:
        return 1

    @nc.workflow
    async def uses_lost() -> str:
        try:
            return await lost()
        except TaskFailed as exc:
            return exc.error_message

    message = eng.start(uses_lost).result(timeout=30)
    assert "no runner named 'nowhere'" in message
    assert "proc" in message and "process" in message


def test_a_task_whose_module_is_missing_in_the_child_is_reported_not_retried(
    eng, registry, tmp_path, monkeypatch, request
):
    (tmp_path / "only_here.py").write_text("def twice(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import only_here  # imported here, so pickled by reference: by name

    request.addfinalizer(lambda: sys.modules.pop("only_here", None))
    (tmp_path / "only_here.py").unlink()  # the child cannot import it

    @nc.task(runner="proc", retry=nc.Retry(initial=0.01, max_attempts=5))
    def needs_module(x: int) -> int:
        return only_here.twice(x)

    @nc.workflow
    async def uses_module() -> str:
        try:
            return str(await needs_module(2))
        except TaskFailed as exc:
            return f"{exc.error_type} after {exc.attempts}: {exc.error_message}"

    out = eng.start(uses_module).result(timeout=30)
    assert out.startswith("TaskNotLoadable after 1: ")
    assert "module 'only_here' is missing" in out


def test_a_hung_child_does_not_hold_up_the_process_exit(tmp_path):
    pid_file = tmp_path / "child.pid"
    script = textwrap.dedent(
        f"""
        import os, time
        import nbconductor as nc

        @nc.task(runner="process")
        def hang() -> None:
            open({str(pid_file)!r}, "w").write(str(os.getpid()))
            time.sleep(600)

        @nc.workflow
        async def flow() -> None:
            await hang()

        eng = nc.Engine(None)
        eng.start(flow)
        deadline = time.monotonic() + 60
        while not os.path.exists({str(pid_file)!r}) and time.monotonic() < deadline:
            time.sleep(0.05)
        print("exiting", flush=True)
        """
    )
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=90)
    assert "exiting" in out.stdout, out.stderr
    assert time.monotonic() - started < 60
    child = int(pid_file.read_text())
    wait_for(lambda: not _alive(child), timeout=10, what="the child process to be gone")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose; /proc tells them apart.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


CRASH_FLOWS = """
import os, time
import nbconductor as nc

@nc.task(runner="process")
def long_step(marker: str) -> str:
    if os.path.exists(marker):
        return f"recovered after pid {open(marker).read()}"
    with open(marker + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(marker + ".tmp", marker)
    time.sleep(120)  # the engine's process is killed meanwhile
    return "first attempt"

@nc.workflow
async def crash_flow(marker: str) -> str:
    return await long_step(marker)
"""


def test_a_killed_engine_process_takes_its_children_along_and_recovery_runs_again(
    tmp_path, registry, monkeypatch, request
):
    (tmp_path / "crash_flows.py").write_text(CRASH_FLOWS)
    monkeypatch.syspath_prepend(str(tmp_path))
    request.addfinalizer(lambda: sys.modules.pop("crash_flows", None))
    db, marker = tmp_path / "h.duckdb", tmp_path / "attempt-1"
    script = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
        "import time, nbconductor as nc, crash_flows\n"
        f"nc.Engine({str(db)!r}).start(crash_flows.crash_flow, {str(marker)!r}, id='c-1')\n"
        "time.sleep(300)\n"
    )
    engine_process = subprocess.Popen([sys.executable, "-c", script])
    try:
        wait_for(marker.exists, timeout=60, what="the attempt to start in a child")
        child = int(marker.read_text())
    finally:
        engine_process.kill()  # SIGKILL: no atexit, no clean stop
        engine_process.wait(10)
    wait_for(lambda: not _alive(child), timeout=10, what="the orphaned child to exit")

    import crash_flows

    engine = Engine(db, make_default=False)
    try:
        assert engine.get("c-1").result(timeout=60) == f"recovered after pid {child}"
        completed = [d for d in ended(engine.get("c-1").history(), EventKind.TASK_COMPLETED)]
        assert len(completed) == 1 and completed[0]["worker"] != f"pid {child}"
        assert crash_flows.crash_flow.name == "crash_flow"
    finally:
        engine.stop(grace=0)


@nc.task(runner="proc", schedule_to_close=0.8, retry=nc.Retry(initial=0.01))
def past_its_deadline(marker: str) -> str:
    deadline = time.monotonic() + 20
    while not nc.cancelled() and time.monotonic() < deadline:
        time.sleep(0.02)  # polling the flag is what a long task does
    with open(marker, "w") as f:
        f.write("cancelled" if nc.cancelled() else "never told")
    return "late"


@nc.workflow
async def schedule_to_close_flow(marker: str) -> str:
    try:
        return await past_its_deadline(marker)
    except TaskFailed as exc:
        return exc.error_type


def test_schedule_to_close_is_kept_by_the_engine_and_stops_the_child(eng, tmp_path):
    eng.start(two_pids).result(timeout=60)  # both children started: 0.8 s is for the task
    marker = tmp_path / "seen"
    h = eng.start(schedule_to_close_flow, str(marker))
    assert h.result(timeout=60) == "TaskTimeout"
    (failed,) = ended(h.history(), EventKind.TASK_FAILED)
    assert (failed["error"]["timeout"], failed["final"]) == ("schedule_to_close", True)
    wait_for(lambda: marker.exists() and marker.read_text(), timeout=20, what="the marker")
    assert marker.read_text() == "cancelled"


@nc.task(runner="proc", retry=nc.Retry(max_attempts=1))
def holds_a_child(gate: str) -> str:
    deadline = time.monotonic() + 30
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.02)  # polling the gate is what keeps the child busy
    return "held"


@nc.task(runner="proc", schedule_to_start=0.5, retry=nc.Retry(max_attempts=1))
def waits_for_a_child() -> str:
    return "ran"


@nc.workflow
async def no_child_free(gate: str) -> list:
    holders = [holds_a_child(gate), holds_a_child(gate)]
    try:
        out = [await waits_for_a_child()]
    except TaskFailed as exc:
        out = [exc.error_type]
    return out + await nc.gather(*holders)


def test_schedule_to_start_covers_waiting_for_a_free_child(eng, tmp_path):
    # Two children, both held: the third attempt never starts within its 0.5 s.
    gate = tmp_path / "gate"
    h = eng.start(no_child_free, str(gate))
    wait_for(
        lambda: any(e.kind is EventKind.TASK_FAILED for e in h.history()),
        timeout=60,
        what="the waiting attempt to time out",
    )
    gate.touch()
    assert h.result(timeout=60) == ["TaskTimeout", "held", "held"]
    (failed,) = ended(h.history(), EventKind.TASK_FAILED)
    assert failed["error"]["timeout"] == "schedule_to_start"


@nc.task(runner="proc", retry=nc.Retry(initial=0.01, max_attempts=2))
def checkpoints_in_a_child(rows: int) -> dict:
    info = nc.task_info()
    if info.attempt == 1:
        nc.heartbeat(details={"done": 3})
        time.sleep(0.3)  # the task's own work: lets the throttled heartbeat reach the engine
        raise ConnectionError("dropped after row 3")
    return {
        "execution_id": info.execution_id,
        "workflow": info.workflow,
        "task": info.task,
        "attempt": info.attempt,
        "resumed_from": info.heartbeat_details,
        "scheduled": info.scheduled_at is not None,
        "started": info.started_at is not None,
        "pid": os.getpid(),
    }


@nc.workflow
async def resumes_in_a_child() -> dict:
    return await checkpoints_in_a_child(10)


def test_task_info_in_a_child_process_says_who_the_attempt_is(eng):
    # The child knows its execution, workflow and attempt, and the retry gets the
    # previous attempt's last checkpoint, as on the thread runner.
    h = eng.start(resumes_in_a_child)
    info = h.result(timeout=60)
    assert info["pid"] != os.getpid()
    assert info["execution_id"] == h.id and info["workflow"] == "resumes_in_a_child"
    assert info["task"] == "checkpoints_in_a_child" and info["attempt"] == 2
    assert info["resumed_from"] == {"done": 3}
    assert info["scheduled"] and info["started"]


def test_a_child_killed_from_several_threads_at_once_is_killed_once():
    # An abandoned attempt's stop timer and the slot that saw its child die both kill
    # the child; closing its socket twice raised EBADF in the timer thread (seen in
    # CI) and could close an fd number already handed to someone else.
    from nbconductor.engine.runners.process import _ChildProcess

    for _ in range(20):
        child = _ChildProcess()
        start = threading.Barrier(8)
        errors: list[BaseException] = []

        def kill(child=child, start=start, errors=errors) -> None:
            start.wait()
            try:
                child.kill()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=kill) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        assert child.process.poll() is not None and child.conn.closed


# --- what a task prints in a child --------------------------------------------------------


chatty = nc.task(runner="proc", name="chatty")(printing_tasks.chatty_body)


@nc.workflow
async def chatty_flow(gate: str) -> int:
    return await chatty(gate)


def test_what_a_task_prints_in_a_child_reaches_its_execution_log_while_it_runs(eng, tmp_path):
    printing_tasks.check_printed_lines_arrive(
        lambda gate: eng.start(chatty_flow, gate), tmp_path / "gate", timeout=30
    )


def test_without_an_output_capture_a_child_tasks_print_reaches_this_processs_stdout(
    eng, tmp_path, capsys
):
    gate = tmp_path / "gate"
    gate.touch()
    assert eng.start(chatty_flow, str(gate)).result(timeout=30) == 7
    captured = capsys.readouterr()
    assert captured.out == "loading rows\ndone" and captured.err == "warning: 2 rows skipped\n"
