"""The IPython shell the extension tests drive: one real shell for the whole session,
clean (``shell``) or with nbconductor loaded (``loaded_shell``).

IPython keeps a process-wide singleton anyway. If the tests create it, its profile
lives in a temporary directory and its history in memory, so they write nothing under
~/.ipython, and it prints without colours, so outputs compare as plain text.
"""

from __future__ import annotations

import threading

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from nbconductor.extension import lifecycle, session


@pytest.fixture(scope="session")
def ipython(tmp_path_factory: pytest.TempPathFactory) -> InteractiveShell:
    """The process's shell."""
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    config.InteractiveShell.colors = "nocolor"
    ipython_dir = str(tmp_path_factory.mktemp("ipython"))
    return InteractiveShell.instance(config=config, ipython_dir=ipython_dir)


@pytest.fixture
def shell(ipython: InteractiveShell):
    """The shell, its user namespace and compiler flags put back as they were after
    the test (the namespace is the same dict object: it is also the functions' globals)."""
    saved = dict(ipython.user_ns)
    yield ipython
    ipython.user_ns.clear()
    ipython.user_ns.update(saved)
    ipython.compile.reset_compiler_flags()


@pytest.fixture
def loaded_shell(shell: InteractiveShell, tmp_path, monkeypatch, capsys):
    """The shell with nbconductor loaded on a fresh history file.

    capsys is set up first, so the output proxies wrap pytest's capture and are taken
    out again before it is torn down. ``gate`` in the user namespace is an Event that
    tasks which must wait block on; it is set at teardown.
    """
    monkeypatch.setenv("NBCONDUCTOR_DB", str(tmp_path / "history.duckdb"))
    monkeypatch.chdir(tmp_path)
    shell.user_ns["gate"] = threading.Event()
    shell.run_line_magic("load_ext", "nbconductor")
    capsys.readouterr()
    yield shell
    shell.user_ns["gate"].set()
    if "nbconductor" in shell.extension_manager.loaded:
        shell.run_line_magic("unload_ext", "nbconductor")
    elif session.state().engine is not None:  # a test left an engine without the extension
        lifecycle.stop_engine()
    capsys.readouterr()
