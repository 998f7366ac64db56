"""``nbconductor worker NOTEBOOK``: a notebook run headless in a subprocess.

Each test writes a notebook with nbformat into ``tmp_path``, starts a worker on it
(``python -m nbconductor.cli worker``) and follows its state-change log on stderr.
Tasks append a line per run to a file, so the files tell which process ran what.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from nbconductor.extension.worker import notebook_cells, worker_db_path
from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
from nbconductor.storage.records import EventKind, Status
from nbconductor.testing import wait_for

pytestmark = pytest.mark.timeout(60)

# The first task run blocks until the file `gate` exists: a kernel is killed there.
TASK_CELL = """%%task step(i: int) -> str
import os, pathlib, threading
with open("runs.txt", "a") as runs:
    runs.write(f"step {i} pid {os.getpid()}\\n")
if i == 1:
    while not pathlib.Path("gate").exists():
        threading.Event().wait(0.02)
return f"{i}@{os.getpid()}"
"""

WORKFLOW_CELL = """%%workflow flow(n: int)
results = []
for i in range(n):
    results.append(await step(i))
return results
"""

# Waits for the file its argument names (and says when it started).
WAITING_TASK_CELL = """%%task wait_for_file(name: str) -> str
import pathlib, threading
pathlib.Path(name + ".started").touch()
while not pathlib.Path(name).exists():
    threading.Event().wait(0.02)
return name
"""


def write_notebook(path: Path, cells: list[str | tuple[str, list[str]]]) -> Path:
    """A notebook of code cells (``(source, tags)`` for tagged ones), after a heading."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_markdown_cell("# flows"))
    for cell in cells:
        source, tags = cell if isinstance(cell, tuple) else (cell, [])
        notebook.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": tags}))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def _environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBCONDUCTOR_", "JPY_"))}
    env["IPYTHONDIR"] = str(tmp_path / "ipython")
    return env


class WorkerProcess:
    """``nbconductor worker`` in a child process, its stderr read line by line."""

    def __init__(self, notebook: Path, *args: str, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nbconductor.cli", "worker", str(notebook), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=notebook.parent.parent,  # not the notebook's folder: the worker moves there
        )
        self.lines: list[str] = []
        self.stdout: list[str] = []
        self._done = threading.Event()
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
        self._done.set()

    def _read_stdout(self) -> None:
        for line in self.process.stdout:
            self.stdout.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_line(self, text: str, timeout: float = 20.0) -> str:
        """The first log line containing ``text`` (waiting for it)."""

        def found():
            return next((line for line in list(self.lines) if text in line), None)

        try:
            return wait_for(found, timeout, f"{text!r} in the worker's log")
        except AssertionError:
            raise AssertionError(f"no {text!r} in the worker's log:\n{self.log}") from None

    def terminate(self, timeout: float = 30.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 30.0) -> int:
        code = self.process.wait(timeout)
        self._done.wait(5)
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for stream in (self.process.stdout, self.process.stderr):
            stream.close()


@pytest.fixture
def start_worker(tmp_path: Path):
    """``start_worker(notebook, *args)``: a worker process, killed at teardown if alive."""
    os.chmod(tmp_path, 0o700)
    started: list[WorkerProcess] = []

    def start(notebook: Path, *args: str) -> WorkerProcess:
        worker = WorkerProcess(notebook, *args, env=_environment(tmp_path))
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()


# --- a real kernel, killed: the worker carries its execution on ---------------------------


@pytest.fixture
def kernel_manager(tmp_path: Path):
    """A kernel factory (this venv's Python) for ``notebook_dir``; shut down at teardown."""
    jupyter_client = pytest.importorskip("jupyter_client")
    from jupyter_client.kernelspec import KernelSpecManager

    spec = tmp_path / "kernels" / "nbconductor-worker-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "worker test", "language": "python"})
    )
    managers = []

    def start(cwd: Path, notebook: Path):
        manager = jupyter_client.KernelManager(
            kernel_name=spec.name,
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)]),
            connection_file=str(tmp_path / f"kernel-{time.monotonic_ns()}.json"),
        )
        env = _environment(tmp_path)
        env["JPY_SESSION_NAME"] = str(notebook)  # as jupyter_server sets it
        manager.start_kernel(cwd=str(cwd), env=env)
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        managers.append((manager, client))
        return manager, client

    yield start
    for manager, client in managers:
        client.stop_channels()
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)


def _execute(client, code: str) -> None:
    reply = client.execute_interactive(code, timeout=30, output_hook=lambda msg: None)
    assert reply["content"]["status"] == "ok", reply["content"]


@pytest.mark.kernel
def test_a_worker_completes_what_a_killed_kernel_left_open(
    tmp_path: Path, kernel_manager, start_worker
):
    directory = tmp_path / "project"
    directory.mkdir()
    notebook = write_notebook(
        directory / "flow.ipynb", ["%load_ext nbconductor", TASK_CELL, WORKFLOW_CELL]
    )
    manager, client = kernel_manager(directory, notebook)
    for code in ("%load_ext nbconductor", TASK_CELL, WORKFLOW_CELL):
        _execute(client, code)
    _execute(client, 'run = flow.start(3, id="flagship")')
    runs = directory / "runs.txt"
    # step 1 may start before step 0's completion is committed (attempts go as soon as
    # their batch is handed to the writer): a ping returns once it is in the file.
    wait_for(lambda: runs.exists() and "step 1" in runs.read_text(), 30, "step 1 to start")
    _execute(client, "import nbconductor\nnbconductor.engine().ping()")
    kernel_pid = manager.provisioner.pid
    os.kill(kernel_pid, signal.SIGKILL)
    wait_for(lambda: not manager.is_alive(), 10, "the killed kernel to die")
    (directory / "gate").touch()

    worker = start_worker(notebook)
    started = worker.wait_line("worker starting")
    assert f"history {directory / '.nbconductor' / 'flow.duckdb'}" in started
    assert "(next to the notebook flow.ipynb)" in started
    worker.wait_line("execution flagship (flow) running -> completed")
    assert worker.terminate() == 0, worker.log
    new = worker.process.pid
    # step 0 completed before the kill and did not run again; step 1 was running.
    assert runs.read_text().splitlines() == [
        f"step 0 pid {kernel_pid}",
        f"step 1 pid {kernel_pid}",
        f"step 1 pid {new}",
        f"step 2 pid {new}",
    ]
    with DuckDBStore(directory / ".nbconductor" / "flow.duckdb", read_only=True) as store:
        record = store.get_execution("flagship")
    assert record.status is Status.COMPLETED
    assert json.loads(record.result) == [f"0@{kernel_pid}", f"1@{new}", f"2@{new}"]
    assert "worker stopped: history committed" in worker.log


# --- schedules, the control socket, JSON logs -------------------------------------------


def test_a_schedule_fires_in_the_worker_and_the_cli_reaches_it(tmp_path: Path, start_worker, cli):
    notebook = write_notebook(
        tmp_path / "nb" / "ticks.ipynb",
        [
            '%%task tick_task(n: int) -> int\nopen("ticks.txt", "a").write(f"{n}\\n")\nreturn n',
            "%%workflow tick(n: int)\nreturn await tick_task(n)",
            "import nbconductor\n"
            "schedules = nbconductor.engine().schedules\n"
            "if not [s for s in schedules.list() if s.id == 'every-second']:\n"
            "    schedules.create('every-second', tick, every='1s', args=[7])",
        ],
    )
    db = tmp_path / "nb" / ".nbconductor" / "ticks.duckdb"
    worker = start_worker(notebook, "--json-logs")
    worker.wait_line('"state": "ready"')

    def fired_and_completed():
        events = [json.loads(line) for line in list(worker.lines)]
        return [
            e for e in events if e["event"] == "execution" and e["to"] == "completed"
        ] and events

    events = wait_for(fired_and_completed, 20, "a fire to complete")
    fire = next(e for e in events if e["event"] == "execution" and e["schedule"])
    assert fire["schedule"] == "every-second" and fire["workflow"] == "tick"
    assert fire["id"].startswith("every-second@") and fire["from"] == "new"
    common = {"time", "level", "logger", "message", "event"}  # logging's, via JsonFormatter
    assert set(fire) == common | {"id", "workflow", "from", "to", "schedule"}
    assert (tmp_path / "nb" / "ticks.txt").read_text().startswith("7\n")

    # The worker serves the control socket: health check and a trigger from the CLI.
    status = cli("--db", db, "status", "--json")
    assert status.code == 0, status.err
    assert status.json["pid"] == worker.process.pid and status.json["healthy"]
    triggered = cli("--db", db, "schedules", "trigger", "every-second", "--json")
    assert triggered.code == 0, triggered.err

    assert worker.terminate() == 0, worker.log
    events = [json.loads(line) for line in worker.lines]  # every line is one JSON object
    worker_events = [e for e in events if e["event"] == "worker"]
    assert [e["state"] for e in worker_events] == ["starting", "ready", "stopping", "stopped"]
    for event in worker_events:
        assert set(event) == common | {
            "state",
            "message",
            "pid",
            "notebook",
            "db",
            "socket",
        }
    assert worker_events[1]["socket"] == status.json["socket"]
    assert "SIGTERM" in worker_events[2]["message"]
    assert not Path(status.json["socket"]).exists()


# --- stopping -----------------------------------------------------------------------------


def _waiting_notebook(directory: Path) -> Path:
    return write_notebook(
        directory / "waiting.ipynb",
        [
            WAITING_TASK_CELL,
            "%%workflow waiter()\nreturn await wait_for_file('gate')",
            "waiter.start(id='w-1')",
        ],
    )


def test_sigterm_lets_the_running_task_finish_and_commits_it(tmp_path: Path, start_worker):
    directory = tmp_path / "nb"
    worker = start_worker(_waiting_notebook(directory))
    worker.wait_line("worker ready")
    socket = Path(worker.wait_line("worker ready").split("serving ")[1].split(";")[0])
    assert socket.exists()
    wait_for((directory / "gate.started").exists, 20, "the task to start")
    worker.process.send_signal(signal.SIGTERM)
    assert "(SIGTERM)" in worker.wait_line("worker stopping")
    (directory / "gate").touch()  # within the grace period (10 s by default)
    assert worker.wait() == 0, worker.log
    # Logged while the engine closed its store: read back from the file.
    assert "execution w-1 (waiter) running -> completed" in worker.log
    assert not socket.exists()
    with DuckDBStore(directory / ".nbconductor" / "waiting.duckdb", read_only=True) as store:
        assert store.get_execution("w-1").status is Status.COMPLETED
        kinds = [e.kind for e in store.load_history("w-1")]
    assert EventKind.TASK_COMPLETED in kinds


def test_the_grace_period_is_bounded_and_the_execution_resumes_later(tmp_path: Path, start_worker):
    directory = tmp_path / "nb"
    worker = start_worker(_waiting_notebook(directory), "--grace", "0.2")
    worker.wait_line("worker ready")
    wait_for((directory / "gate.started").exists, 20, "the task to start")
    assert worker.terminate(timeout=20) == 0, worker.log  # the task never ends by itself
    stopped = worker.wait_line("worker stopped")
    assert "1 open execution resumes when an engine opens the file again" in stopped
    with DuckDBStore(directory / ".nbconductor" / "waiting.duckdb", read_only=True) as store:
        assert store.get_execution("w-1").status is Status.RUNNING
        kinds = [e.kind for e in store.load_history("w-1")]
    assert kinds == [EventKind.EXECUTION_STARTED, EventKind.TASK_SCHEDULED]


def test_a_worker_on_a_held_history_file_names_the_holder(tmp_path: Path, start_host, start_worker):
    os.chmod(tmp_path, 0o700)
    db = tmp_path / "history.duckdb"
    host = start_host(db)
    notebook = write_notebook(tmp_path / "nb" / "flows.ipynb", ["raise SystemExit('never run')"])
    worker = start_worker(notebook, "--db", str(db))
    assert worker.wait() == 2
    assert f"worker failed: {db} is in use by process {host.process.pid}" in worker.log
    host.stop()


# --- which cells run ------------------------------------------------------------------------


def test_only_cells_tagged_nbconductor_run(tmp_path: Path, start_worker):
    directory = tmp_path / "nb"
    notebook = write_notebook(
        directory / "tagged.ipynb",
        [
            "open('untagged.txt', 'w').write('ran')  # exploration: not for the worker",
            ("%%workflow hello(name: str)\nreturn f'hello {name}'", ["nbconductor"]),
            ("hello.start('worker', id='h-1')", ["setup", "nbconductor"]),
            "raise RuntimeError('an untagged cell ran')",
        ],
    )
    worker = start_worker(notebook)
    assert "running the 2 cells tagged nbconductor of tagged.ipynb" in worker.wait_line(
        "worker starting"
    )
    worker.wait_line("execution h-1 (hello) new -> completed")
    assert worker.terminate() == 0, worker.log
    assert not (directory / "untagged.txt").exists()
    assert "failed" not in worker.log


def test_a_failing_cell_stops_the_worker_unless_keep_going(tmp_path: Path, start_worker):
    directory = tmp_path / "nb"
    notebook = write_notebook(
        directory / "broken.ipynb",
        ["x = 1", "raise ValueError('bad config')", "open('after.txt', 'w').write('ran')"],
    )
    worker = start_worker(notebook)
    assert worker.wait() == 1
    assert "cell 3 (\"raise ValueError('bad config')\") failed: ValueError: bad config" in (
        worker.log
    )
    assert "ValueError: bad config" in "\n".join(worker.stdout)  # IPython's traceback
    assert not (directory / "after.txt").exists()
    assert "worker stopped" in worker.log

    worker = start_worker(notebook, "--keep-going")
    worker.wait_line("worker ready: ran 2 of 3 cells")
    assert (directory / "after.txt").exists()
    assert worker.terminate() == 0, worker.log


# --- in-process: the notebook and its history file ------------------------------------------


def test_notebook_cells_and_the_history_file(tmp_path: Path):
    notebook = write_notebook(tmp_path / "a.ipynb", ["x = 1", "y = 2"])
    cells, tagged = notebook_cells(notebook)
    assert [(c.number, c.source) for c in cells] == [(2, "x = 1"), (3, "y = 2")]
    assert not tagged
    (tmp_path / "b.ipynb").write_text("{not json")
    with pytest.raises(ValueError, match="not a notebook"):
        notebook_cells(tmp_path / "b.ipynb")

    assert worker_db_path(notebook, environ={}) == (
        tmp_path / ".nbconductor" / "a.duckdb",
        "next to the notebook a.ipynb",
    )
    assert worker_db_path(notebook, "x.duckdb", environ={}, cwd=tmp_path / "cwd") == (
        tmp_path / "cwd" / "x.duckdb",
        "from --db",
    )
    chosen = worker_db_path(notebook, environ={"NBCONDUCTOR_DB": "h.duckdb"}, cwd=tmp_path)
    assert chosen == (tmp_path / "h.duckdb", "from NBCONDUCTOR_DB")


def test_the_engines_records_are_in_the_worker_log(tmp_path: Path, start_worker):
    # The worker's --json-logs is a formatter over logging: a task's final failure is one
    # ERROR line with its fields, beside the worker's own lines, every line JSON.
    notebook = write_notebook(
        tmp_path / "nb" / "failing.ipynb",
        [
            "%%task declines() -> None\n"
            "import nbconductor\n"
            "raise nbconductor.ApplicationError('card declined', non_retryable=True)",
            "%%workflow pays()\nawait declines()",
            "pays.start(id='p-1')",
        ],
    )
    worker = start_worker(notebook, "--json-logs")
    worker.wait_line('"status": "failed"')
    assert worker.terminate() == 0, worker.log
    events = [json.loads(line) for line in worker.lines]
    errors = [e for e in events if e["level"] == "ERROR"]
    assert len(errors) == 1, worker.log
    assert errors[0]["event"] == "task_failed" and errors[0]["execution_id"] == "p-1"
    assert errors[0]["logger"] == "nbconductor.engine"
    assert "ApplicationError: card declined" in errors[0]["message"]
    assert [e["to"] for e in events if e["event"] == "execution"] == ["running", "failed"]


def test_the_text_log_names_levels_above_info(tmp_path: Path, start_worker):
    notebook = write_notebook(
        tmp_path / "nb" / "failing.ipynb",
        [
            "%%task declines() -> None\n"
            "import nbconductor\n"
            "raise nbconductor.ApplicationError('card declined', non_retryable=True)",
            "%%workflow pays()\nawait declines()",
            "pays.start(id='p-1')",
        ],
    )
    worker = start_worker(notebook)
    line = worker.wait_line(" ERROR task declines attempt 1 of execution p-1 (pays)")
    assert line.endswith("failed for good: ApplicationError: card declined")
    worker.wait_line("execution p-1 (pays) running -> failed")
    assert worker.terminate() == 0, worker.log
