"""IPython glue: the only package that imports IPython (see docs/architecture.md).

``%load_ext nbconductor`` starts this kernel's engine (history in
``.nbconductor/<notebook>.duckdb`` or ``NBCONDUCTOR_DB``), registers ``%%workflow``,
``%%task`` and ``%conductor`` / ``%wf``, shows execution handles as text and HTML,
and keeps what tasks and workflows print out of the running cell (into each
execution's log: :func:`execution_log`).
"""

from __future__ import annotations

from typing import Any

from nbconductor.extension.output import execution_log

__all__ = ("execution_log", "load_ipython_extension", "unload_ipython_extension")


def load_ipython_extension(ipython: Any) -> None:
    """Start nbconductor in this kernel; repeating it (or ``%reload_ext``) is harmless."""
    from nbconductor.extension import loader

    loader.load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Stop nbconductor in this kernel: the engine stops (tasks get 2 s, history is
    committed, the file closed) and the magics, display and output capture go away."""
    from nbconductor.extension import loader

    loader.unload(ipython)
