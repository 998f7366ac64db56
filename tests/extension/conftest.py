"""The IPython shell the extension tests drive: one real shell for the whole session.

IPython keeps a process-wide singleton anyway. If the tests create it, its profile
lives in a temporary directory and its history in memory, so they write nothing under
~/.ipython, and it prints without colours, so outputs compare as plain text.
"""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config


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
