"""The extension in real kernels (jupyter_client): restart recovery, two kernels on one
history, unloading while a task runs, interrupting a blocking wait, clean shutdown.

The kernels run this venv's Python (a kernelspec written to a temporary directory
names ``sys.executable``) in a temporary notebook directory, with
``JPY_SESSION_NAME`` pointing at ``flow.ipynb`` there, as jupyter_server would set
it. Kernels are shared where a test does not depend on a fresh one: the kernel that
resumes the killed run also serves the interrupt, unload and second-kernel tests.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
from nbconductor.storage.records import EventKind, Status
from nbconductor.testing import wait_for

jupyter_client = pytest.importorskip("jupyter_client")
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(120)]

# Each task writes one line per run, so the file tells which tasks ran in which kernel.
TASK_CELL = """%%task step(i: int) -> str
import os, pathlib, threading
with open("runs.txt", "a") as runs:
    runs.write(f"step {i} pid {os.getpid()}\\n")
if i == 1:
    while not pathlib.Path("gate").exists():  # the first kernel dies waiting here
        threading.Event().wait(0.02)
return f"{i}@{os.getpid()}"
"""

WORKFLOW_CELL = """%%workflow flow(n: int)
print("flow starts", n)
results = []
for i in range(n):
    results.append(await step(i))
print("flow done", len(results))
return results
"""

# A task for the other scenarios: it waits for the file its argument names.
WAITING_TASK_CELL = """%%task wait_for_file(name: str) -> str
import pathlib, threading
pathlib.Path(name + ".started").touch()
while not pathlib.Path(name).exists():
    threading.Event().wait(0.02)
return name
"""


@dataclass
class Reply:
    """What one execute request produced."""

    status: str
    stdout: str = ""
    stderr: str = ""
    results: list[dict] = field(default_factory=list)
    error: tuple[str, str, str] | None = None

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


class Kernel:
    """A kernel and its client, with `run(code)` that waits for the reply."""

    def __init__(self, spec_dir: Path, cwd: Path, env: dict[str, str]) -> None:
        self.manager = KernelManager(
            kernel_name="nbconductor-test",
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec_dir)]),
            connection_file=str(cwd.parent / f"kernel-{time.monotonic_ns()}.json"),
        )
        self.manager.start_kernel(cwd=str(cwd), env=env)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    @property
    def pid(self) -> int:
        return self.manager.provisioner.pid

    def send(self, code: str) -> str:
        return self.client.execute(code)

    def reply(self, msg_id: str, timeout: float = 30.0) -> Reply:
        """Collect a request's output until the kernel is idle again, then its reply."""
        deadline = time.monotonic() + timeout
        out = Reply(status="?")
        while True:
            msg = self._next(self.client.get_iopub_msg, deadline, "kernel output")
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                setattr(out, content["name"], getattr(out, content["name"]) + content["text"])
            elif kind in ("execute_result", "display_data"):
                out.results.append(content["data"])
            elif kind == "error":
                out.error = (content["ename"], content["evalue"], "\n".join(content["traceback"]))
            elif kind == "status" and content["execution_state"] == "idle":
                break
        while True:
            msg = self._next(self.client.get_shell_msg, deadline, "the execute reply")
            if msg["parent_header"].get("msg_id") == msg_id:
                out.status = msg["content"]["status"]
                return out

    def run(self, code: str, timeout: float = 30.0, *, ok: bool = True) -> Reply:
        out = self.reply(self.send(code), timeout)
        if ok:
            assert out.status == "ok", f"{code!r} failed: {out.error or out.text}"
        return out

    def wait_for_stream(self, msg_id: str, text: str, timeout: float = 30.0) -> None:
        """Wait until the running request printed ``text`` (its other output is dropped)."""
        deadline = time.monotonic() + timeout
        seen = ""
        while text not in seen:
            msg = self._next(self.client.get_iopub_msg, deadline, f"output {text!r}")
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                seen += msg["content"]["text"]

    @staticmethod
    def _next(get, deadline: float, what: str) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out waiting for {what}")
        try:
            return get(timeout=remaining)
        except queue.Empty:
            raise AssertionError(f"timed out waiting for {what}") from None

    def kill(self) -> None:
        """SIGKILL: no atexit, no flush, no goodbye."""
        os.kill(self.pid, signal.SIGKILL)
        wait_for(lambda: not self.manager.is_alive(), 10, "the killed kernel to die")
        self.close(now=True)

    def close(self, *, now: bool = False) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=now)


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kernelspec that runs this venv's Python, whatever `python` is on PATH."""
    root = tmp_path_factory.mktemp("kernels")
    spec = root / "nbconductor-test"
    spec.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "nbconductor test", "language": "python"})
    )
    return root


@pytest.fixture(scope="module")
def notebook_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nb") / "notebook"


@pytest.fixture(scope="module")
def start_kernel(spec_dir: Path, notebook_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    notebook_dir.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBCONDUCTOR_", "JPY_"))}
    env["JPY_SESSION_NAME"] = str(notebook_dir / "flow.ipynb")  # as jupyter_server sets it
    env["IPYTHONDIR"] = str(tmp_path_factory.mktemp("ipython"))
    started: list[Kernel] = []

    def start() -> Kernel:
        kernel = Kernel(spec_dir, notebook_dir, env)
        started.append(kernel)
        return kernel

    yield start
    for kernel in started:
        if kernel.manager.has_kernel:
            kernel.close(now=True)


@pytest.fixture(scope="module")
def killed_run(start_kernel, notebook_dir: Path) -> dict:
    """Kernel 1: load, define, start; SIGKILL it during step 1, after step 0 completed."""
    first = start_kernel()
    loaded = first.run("%load_ext nbconductor")
    first.run(TASK_CELL)
    first.run(WORKFLOW_CELL)
    first.run('run = flow.start(3, id="flagship")')
    runs = notebook_dir / "runs.txt"
    # step 1 may start before step 0's completion is committed (attempts go as soon as
    # their batch is handed to the writer): a ping returns once it is in the file.
    wait_for(lambda: runs.exists() and "step 1" in runs.read_text(), 30, "step 1 to start")
    assert first.run("import nbconductor\nnbconductor.engine().ping()").status == "ok"
    pid = first.pid
    first.kill()
    return {"pid": pid, "load": loaded}


@pytest.fixture(scope="module")
def second(start_kernel, killed_run: dict, notebook_dir: Path) -> Kernel:
    """Kernel 2, on the same notebook directory, with step 1's gate open."""
    (notebook_dir / "gate").touch()
    kernel = start_kernel()
    kernel.loaded = kernel.run("%load_ext nbconductor")
    return kernel


def test_the_notebook_path_chooses_the_history_file(killed_run: dict, notebook_dir: Path):
    assert (
        "history in .nbconductor/flow.duckdb (next to the notebook flow.ipynb, its path from "
        "jupyter-session)" in killed_run["load"].stdout
    )
    directory = notebook_dir / ".nbconductor"
    assert directory.stat().st_mode & 0o777 == 0o700


def test_a_killed_kernels_execution_completes_in_a_new_kernel(
    second: Kernel, killed_run: dict, notebook_dir: Path
):
    assert (
        "1 execution is waiting for its definition: flow ×1. Run the cells that define them"
        in second.loaded.stdout
    )
    second.run(TASK_CELL)
    defined = second.run(WORKFLOW_CELL)
    assert "flow: resuming 1 execution that waited for this definition: flagship" in defined.stdout
    done = second.run(
        "import nbconductor\nrun = nbconductor.engine().get('flagship')\nrun.result(timeout=30)"
    )
    old, new = killed_run["pid"], second.pid
    assert done.results[0]["text/plain"] == repr([f"0@{old}", f"1@{new}", f"2@{new}"])
    runs = (notebook_dir / "runs.txt").read_text().splitlines()
    # step 0 completed before the kill and was not run again; step 1 was running.
    assert runs == [
        f"step 0 pid {old}",
        f"step 1 pid {old}",
        f"step 1 pid {new}",
        f"step 2 pid {new}",
    ]
    # Top-level await on the kernel's loop gives the same result.
    awaited = second.run("await run")
    assert awaited.results[0]["text/plain"] == done.results[0]["text/plain"]
    shown = second.run("run")
    # The view's saved snapshot (an output of its own), then the view with its text.
    snapshot, view = shown.results
    assert "nbc-saved-snapshot" in snapshot["text/html"] and "Completed" in snapshot["text/html"]
    assert view["text/plain"] == "<Execution flow flagship>"
    assert "text/html" not in view
    # What the workflow printed went to its log, not to a cell. The log lives in the
    # kernel's memory: the first kernel's lines died with it, and the replay does not
    # print them again.
    assert "flow " not in defined.text + done.text
    log = second.run("%conductor show flagship").stdout
    assert "output (1 line):\n    flow done 3" in log


def test_a_second_kernel_on_the_same_notebook_gets_a_clear_message(second: Kernel, start_kernel):
    third = start_kernel()
    loaded = third.run("%load_ext nbconductor")
    assert loaded.error is None and "Traceback" not in loaded.text
    assert "could not open its history file" in loaded.stderr
    assert f"in use by process {second.pid}" in loaded.stderr
    assert "%conductor db other.duckdb" in loaded.stderr
    assert "engine: not running" in third.run("%conductor status").stdout
    switched = third.run("%conductor db other.duckdb")
    assert "engine started; history in other.duckdb" in switched.stdout
    third.close()


def test_interrupt_stops_the_waiting_not_the_execution(second: Kernel, notebook_dir: Path):
    second.run(WAITING_TASK_CELL)
    second.run("%%workflow interrupted()\nreturn await wait_for_file('interrupt-gate')\n")
    second.run("waiting = interrupted.start(id='interrupted-1')")
    wait_for(lambda: (notebook_dir / "interrupt-gate.started").exists(), 30, "the task to start")
    # One statement: IPython compiles and runs a cell statement by statement, and an
    # interrupt between two of them would not land in the wait.
    msg_id = second.send("(print('waiting', flush=True), waiting.result())")
    second.wait_for_stream(msg_id, "waiting")
    second.manager.interrupt_kernel()
    interrupted = second.reply(msg_id)
    assert interrupted.status == "error"
    assert interrupted.error[0] == "KeyboardInterrupt"
    assert "waiting.result()" in interrupted.error[2]  # the line it was waiting in
    assert second.run("waiting.status.title").results[0]["text/plain"] == "'Running'"
    (notebook_dir / "interrupt-gate").touch()
    finished = second.run("waiting.result(timeout=30)")
    assert finished.results[0]["text/plain"] == "'interrupt-gate'"


def test_a_blocking_wait_for_a_signal_says_so_and_a_magic_sends_it(second: Kernel):
    second.run(
        "%%workflow approval()\nimport nbconductor as nc\nreturn await nc.signal('approve')\n"
    )
    # The notice comes after 2 s by default; sooner here.
    second.run(
        "from nbconductor.engine import handle as _handle\n_handle.NOTICE_AFTER = 0.1\n"
        "wanted = approval.start(id='approval-1')"
    )
    msg_id = second.send("wanted.result()")
    second.wait_for_stream(msg_id, "is waiting for signal 'approve'")
    second.manager.interrupt_kernel()
    assert second.reply(msg_id).error[0] == "KeyboardInterrupt"
    sent = second.run('%conductor signal approval-1 approve "yes"')
    assert "signal 'approve' sent to approval-1" in sent.stdout
    assert second.run("wanted.result(timeout=10)").results[0]["text/plain"] == "'yes'"


def test_unload_while_a_task_runs_commits_history_and_a_new_engine_resumes(
    second: Kernel, notebook_dir: Path
):
    second.run(WAITING_TASK_CELL)
    second.run("%%workflow unloaded()\nreturn await wait_for_file('unload-gate')\n")
    second.run("pending = unloaded.start(id='unloaded-1')")
    wait_for(lambda: (notebook_dir / "unload-gate.started").exists(), 30, "the task to start")
    unloaded = second.run("%unload_ext nbconductor")
    assert "engine stopped; history committed to .nbconductor/flow.duckdb" in unloaded.stdout
    # The file is closed and complete: another process can read it.
    with DuckDBStore(notebook_dir / ".nbconductor" / "flow.duckdb", read_only=True) as store:
        assert store.get_execution("unloaded-1").status is Status.RUNNING
        kinds = [e.kind for e in store.load_history("unloaded-1")]
        assert kinds == [EventKind.EXECUTION_STARTED, EventKind.TASK_SCHEDULED]
    (notebook_dir / "unload-gate").touch()
    reloaded = second.run("%load_ext nbconductor")
    assert "open execution" in reloaded.stdout and "unloaded ×1" in reloaded.stdout
    done = second.run("nbconductor.engine().get('unloaded-1').result(timeout=30)")
    assert done.results[0]["text/plain"] == "'unload-gate'"


def test_shutdown_stops_the_engine_and_closes_the_file(second: Kernel, notebook_dir: Path):
    """Even with a task that never ends: Python joins the task pool's threads at exit
    before atexit handlers run, so the engine is stopped from threading's exit hook."""
    history = notebook_dir / ".nbconductor" / "flow.duckdb"
    second.run(WAITING_TASK_CELL)
    second.run("%%workflow hung()\nreturn await wait_for_file('never')\n")
    second.run("hung.start(id='hung-1')")
    wait_for(lambda: (notebook_dir / "never.started").exists(), 30, "the task to start")
    # jupyter_client's default: SIGTERM after half of it (2.5 s), SIGKILL at the end.
    # The engine's exit grace (2 s) must fit in the first half; the hung thread then
    # keeps the process alive until the SIGTERM.
    second.manager.shutdown_wait_time = 5.0
    second.close()  # shutdown_request: the kernel exits normally and atexit runs
    assert not Path(f"{history}.wal").exists()  # checkpointed and closed, not killed
    with DuckDBStore(history, read_only=True) as store:
        assert store.get_execution("flagship").status is Status.COMPLETED
        assert store.get_execution("hung-1").status is Status.RUNNING  # resumes next time
