"""Loading, reloading and unloading the extension in a real IPython shell, and the
kernel engine's life within one process: the chosen history file, a locked one,
``%conductor start``, ``stop``, ``db`` and ``resume``.

Kernel-level behaviour (restarts, SIGKILL, interrupts) is in test_kernel.py.
"""

from __future__ import annotations

import sys

import pytest
from IPython.core.error import UsageError
from shelltools import run

import nbconductor
from nbconductor.engine.handle import Handle
from nbconductor.errors import EngineStopped
from nbconductor.extension import output, session
from nbconductor.storage.duckdb.duckdb_store import DuckDBStore


def test_load_starts_the_engine_on_the_chosen_file(ipython, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NBCONDUCTOR_DB", str(tmp_path / "chosen.duckdb"))
    monkeypatch.chdir(tmp_path)
    try:
        result, out = run(ipython, capsys, "%load_ext nbconductor")
        assert result.success
        assert "nbconductor: engine started; history in chosen.duckdb (from NBCONDUCTOR_DB)" in out
        engine = nbconductor.engine()
        assert engine is session.kernel_engine()
        assert engine.store.path == str(tmp_path / "chosen.duckdb")
        # Loading twice is harmless: IPython says so, and a direct second load reuses all.
        _, again = run(ipython, capsys, "%load_ext nbconductor")
        assert "already loaded" in again
        nbconductor.load_ipython_extension(ipython)
        assert nbconductor.engine() is engine
        assert capsys.readouterr().out == ""
    finally:
        ipython.run_line_magic("unload_ext", "nbconductor")
    assert "engine stopped; history committed to chosen.duckdb" in capsys.readouterr().out
    assert not engine.running


def test_without_a_notebook_path_the_default_file_is_used_and_said(
    ipython, tmp_path, monkeypatch, capsys
):
    for name in ("NBCONDUCTOR_DB", "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    try:
        _, out = run(ipython, capsys, "%load_ext nbconductor")
    finally:
        ipython.run_line_magic("unload_ext", "nbconductor")
    assert "history in .nbconductor/default.duckdb" in out
    assert "the notebook's path was not detected" in out
    assert "%conductor db PATH" in out
    assert (tmp_path / ".nbconductor" / "default.duckdb").exists()
    assert (tmp_path / ".nbconductor").stat().st_mode & 0o777 == 0o700


def test_reload_keeps_the_same_engine(loaded_shell, capsys):
    engine = nbconductor.engine()
    result, out = run(loaded_shell, capsys, "%reload_ext nbconductor")
    assert result.success, out
    assert nbconductor.engine() is engine and engine.running
    assert "conductor" in loaded_shell.magics_manager.magics["line"]


def test_unload_stops_the_engine_and_removes_everything(loaded_shell, capsys):
    engine = nbconductor.engine()
    output.install()  # see run(): pytest replaced sys.stdout after the fixture loaded us
    assert output.installed()
    run(loaded_shell, capsys, "%unload_ext nbconductor")
    assert not engine.running
    assert not output.installed()
    assert not isinstance(sys.stdout, output.CapturingStream)
    assert "conductor" not in loaded_shell.magics_manager.magics["line"]
    assert "workflow" not in loaded_shell.magics_manager.magics["cell"]
    assert Handle not in loaded_shell.display_formatter.formatters["text/html"].type_printers
    with pytest.raises(EngineStopped):
        nbconductor.engine()


def test_a_locked_history_file_leaves_the_extension_loaded_without_engine(
    ipython, tmp_path, monkeypatch, capsys
):
    path = tmp_path / "taken.duckdb"
    holder = DuckDBStore(path)  # the store refuses a second writer, in-process or not
    monkeypatch.setenv("NBCONDUCTOR_DB", str(path))
    monkeypatch.chdir(tmp_path)
    try:
        result, out = run(ipython, capsys, "%load_ext nbconductor")
        assert result.success  # a message, not a traceback
        assert "Traceback" not in out
        assert "could not open its history file" in out
        assert "%conductor db other.duckdb" in out and "NBCONDUCTOR_DB" in out
        assert "nbconductor" in ipython.extension_manager.loaded
        with pytest.raises(EngineStopped):
            nbconductor.engine()
        _, status = run(ipython, capsys, "%conductor status")
        assert "engine: not running" in status and "could not open" in status
        failed, listed = run(ipython, capsys, "%conductor list")
        assert isinstance(failed.error_in_exec, UsageError)
        assert "could not open its history file" in listed
        _, switched = run(ipython, capsys, "%conductor db other.duckdb")
        assert "engine started; history in other.duckdb" in switched
        assert nbconductor.engine().store.path == str(tmp_path / "other.duckdb")
    finally:
        holder.close()
        ipython.run_line_magic("unload_ext", "nbconductor")


def test_resume_schedules_stop_start_and_db(loaded_shell, tmp_path, capsys):
    _, out = run(loaded_shell, capsys, "%conductor resume")
    assert "no open executions" in out
    result, out = run(loaded_shell, capsys, "%conductor schedules")
    assert result.success, out
    _, out = run(loaded_shell, capsys, "%conductor db")
    assert "history in history.duckdb (from NBCONDUCTOR_DB); the engine is running" in out
    _, out = run(loaded_shell, capsys, "%conductor stop")
    assert "engine stopped; history committed to history.duckdb" in out
    _, out = run(loaded_shell, capsys, "%conductor status")
    assert "engine: not running" in out
    result, out = run(loaded_shell, capsys, "%conductor list")
    assert isinstance(result.error_in_exec, UsageError) and "%conductor start" in out
    _, out = run(loaded_shell, capsys, "%conductor start")
    assert "engine started; history in history.duckdb" in out
    _, out = run(loaded_shell, capsys, "%conductor start")
    assert "already running" in out
    _, out = run(loaded_shell, capsys, "%conductor db elsewhere/second.duckdb")
    assert "engine stopped" in out and "history in elsewhere/second.duckdb" in out
    assert nbconductor.engine().store.path == str(tmp_path / "elsewhere" / "second.duckdb")
    _, out = run(loaded_shell, capsys, "%conductor db elsewhere/second.duckdb")
    assert "already using" in out
    holder = DuckDBStore(tmp_path / "taken.duckdb")
    try:  # a file that cannot be opened leaves the engine where it was
        _, out = run(loaded_shell, capsys, "%conductor db taken.duckdb")
    finally:
        holder.close()
    assert "could not open taken.duckdb" in out
    assert "The engine stays on elsewhere/second.duckdb" in out
    assert nbconductor.engine().store.path == str(tmp_path / "elsewhere" / "second.duckdb")
