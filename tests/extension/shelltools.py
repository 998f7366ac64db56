"""Helpers for the tests that drive the extension through a real shell (imported by
name: test modules cannot import ``conftest`` reliably when several test folders have
one)."""

from __future__ import annotations

import itertools
import re

from nbconductor.extension import output

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_names = itertools.count()


def run(shell, capsys, code: str):
    """Run a cell the way a kernel does; return the result and everything printed."""
    if "nbconductor" in shell.extension_manager.loaded:
        # pytest's capture puts its own sys.stdout back whenever it resumes (between
        # fixture setup and the test, for instance), dropping the proxy the extension
        # installed; a kernel never does that. Installing again is idempotent.
        output.install()
    result = shell.run_cell(code, store_history=True)
    captured = capsys.readouterr()
    return result, _ANSI.sub("", captured.out + captured.err)


def unique(prefix: str) -> str:
    """A workflow/task name no other test registered (the registry is process-wide)."""
    return f"{prefix}_{next(_names)}"


def define_pair(shell, capsys, *, wait_on_gate: bool = False, extra_body: str = ""):
    """A task `NAME_step(i)` and a workflow `NAME(n)` summing its results; their names."""
    task_name, flow_name = unique("step"), unique("flow")
    block = "    gate.wait(10)\n" if wait_on_gate else ""
    result, out = run(
        shell,
        capsys,
        f"%%task {task_name}(i: int)\nprint('step', i)\nif i == 1:\n{block or '    pass'}\nreturn i * 10\n",
    )
    assert result.success, out
    result, out = run(
        shell,
        capsys,
        f"%%workflow {flow_name}(n: int)\nprint('flow starts', n)\ntotal = 0\n"
        f"for i in range(n):\n    total += await {task_name}(i)\n{extra_body}return total\n",
    )
    assert result.success, out
    return task_name, flow_name
