"""A real kernel serves its engine on the control socket, for the ``nbconductor`` command.

One kernel (jupyter_client, this venv's Python) in a private notebook directory, with
``JPY_SESSION_NAME`` naming ``flow.ipynb`` there; the CLI runs in this process
(``nbconductor.cli.main``) against the kernel's history file. The tests run in order:
serve, steer from the CLI, stop and start, switch files, fail to serve, shut down.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from test_kernel import Kernel

from nbconductor.cli import main
from nbconductor.remote.address import beside_path

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def notebook_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("socket") / "notebook"
    directory.mkdir(mode=0o700)
    return directory


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory, notebook_dir: Path):
    root = tmp_path_factory.mktemp("kernels")
    spec = root / "nbconductor-test"
    spec.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "nbconductor test", "language": "python"})
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBCONDUCTOR_", "JPY_"))}
    env["JPY_SESSION_NAME"] = str(notebook_dir / "flow.ipynb")
    env["IPYTHONDIR"] = str(tmp_path_factory.mktemp("ipython"))
    started = Kernel(root, notebook_dir, env)
    started.loaded = started.run("%load_ext nbconductor")
    yield started
    if started.manager.has_kernel:
        started.close(now=True)


@pytest.fixture
def cli(capsys, monkeypatch):
    """``nbconductor ARGS`` in this process: (exit code, stdout, stderr)."""
    monkeypatch.delenv("NBCONDUCTOR_DB", raising=False)

    def run(*argv: object) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_the_kernel_serves_its_engine_on_a_private_socket(kernel: Kernel, notebook_dir: Path):
    assert "Traceback" not in kernel.loaded.text and "cannot reach" not in kernel.loaded.text
    socket = beside_path(notebook_dir / ".nbconductor" / "flow.duckdb")
    assert stat.S_ISSOCK(os.lstat(socket).st_mode)
    assert _mode(socket) == 0o600 and _mode(socket.parent) == 0o700
    status = kernel.run("%conductor status").stdout
    assert f"control socket: {socket} (for the `nbconductor` command)" in status


def test_the_cli_signals_an_execution_waiting_in_the_kernel(kernel: Kernel, notebook_dir, cli):
    db = notebook_dir / ".nbconductor" / "flow.duckdb"
    kernel.run(
        "%%workflow approval()\nimport nbconductor as nc\nreturn await nc.signal('approve')\n"
    )
    kernel.run("wanted = approval.start(id='approval-1')")
    code, out, err = cli("--db", db, "signal", "approval-1", "approve", '"from the cli"')
    assert code == 0, err
    assert out == "signal 'approve' sent to approval-1\n"  # delivered live, not recorded
    done = kernel.run("wanted.result(timeout=10)")
    assert done.results[0]["text/plain"] == "'from the cli'"
    code, out, err = cli("--db", db, "status", "--json")
    assert code == 0, err
    assert json.loads(out)["pid"] == kernel.pid


def test_stop_and_start_take_the_socket_away_and_serve_it_again(kernel, notebook_dir, cli):
    db = notebook_dir / ".nbconductor" / "flow.duckdb"
    socket = beside_path(db)
    kernel.run("%conductor stop")
    assert not socket.exists()
    assert cli("--db", db, "status")[0] == 2  # no engine holds the file
    kernel.run("%conductor start")  # a new engine, and a new server for it
    assert socket.exists()
    code, out, err = cli("--db", db, "show", "approval-1", "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "completed"
    assert cli("--db", db, "status")[0] == 0


def test_switching_files_moves_the_socket(kernel: Kernel, notebook_dir: Path, cli):
    first, other = notebook_dir / ".nbconductor" / "flow.duckdb", notebook_dir / "other.duckdb"
    switched = kernel.run("%conductor db other.duckdb")
    assert "cannot reach" not in switched.text
    assert not beside_path(first).exists() and beside_path(other).exists()
    assert cli("--db", other, "status")[0] == 0
    assert cli("--db", first, "status")[0] == 2


def test_an_engine_that_cannot_be_served_still_runs(kernel: Kernel, notebook_dir: Path, cli):
    blocked = notebook_dir / "blocked.duckdb"
    beside_path(blocked).write_text("not a socket")  # where the socket should go
    switched = kernel.run("%conductor db blocked.duckdb")
    lines = [line for line in switched.text.splitlines() if "cannot reach" in line]
    assert len(lines) == 1
    assert lines[0].startswith(
        "nbconductor: the `nbconductor` command cannot reach this kernel (no control socket): "
        "ControlError: "
    )
    assert "is not a socket" in lines[0]
    assert "engine started; history in blocked.duckdb" in switched.stdout
    status = kernel.run("%conductor status").stdout
    assert "engine: running" in status
    assert "control socket: none; the `nbconductor` command cannot reach this kernel" in status
    assert kernel.run("approval.start(id='approval-2').status.title").status == "ok"
    # Served again once the file is out of the way (a new ControlServer each time).
    beside_path(blocked).unlink()
    kernel.run("%conductor stop")
    kernel.run("%conductor start")
    assert cli("--db", blocked, "status")[0] == 0


def test_shutting_the_kernel_down_removes_its_socket(kernel: Kernel, notebook_dir: Path):
    socket = beside_path(notebook_dir / "blocked.duckdb")
    assert socket.exists()
    kernel.manager.shutdown_wait_time = 5.0
    kernel.close()  # shutdown_request: the exit hooks stop the server, then the engine
    assert not socket.exists()
