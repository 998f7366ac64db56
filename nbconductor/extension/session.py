"""What the extension keeps for the life of the kernel process, and how to read it.

One :class:`KernelState` per process, held in :data:`_state`, which survives
``%reload_ext`` (IPython reloads only the ``nbconductor`` package module, and a reload
of this module re-executes it in the same namespace, where ``globals().get`` finds the
state again).

Everything that acts in the kernel (the magics, the definition cells, the
``%conductor`` subcommands) reads the kernel's engine from here; only
:mod:`~nbconductor.extension.lifecycle` changes it, and only
:mod:`~nbconductor.extension.loader` wires the pieces together at load time, so
imports point one way: loader → lifecycle, magics, define → session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbconductor.errors import EngineStopped

if TYPE_CHECKING:
    from nbconductor.engine.engine import Engine
    from nbconductor.remote.server import ControlServer

__all__ = (
    "KernelState",
    "kernel_engine",
    "require_engine",
    "shown_path",
    "socket_path",
    "state",
)


@dataclass
class KernelState:
    """What the extension keeps for the life of the kernel process.

    Attributes:
        engine: the kernel's engine, or None (not started, stopped, or the history
            file could not be opened).
        path: the history file the engine uses, or would use.
        reason: one sentence on where ``path`` came from.
        problem: why there is no engine, with what to do (None when there is one).
        shell: the shell the extension is loaded in (None while unloaded).
        exit_hook: whether the exit hooks are registered (once per process).
        server: the control server of ``engine``, or None (no engine, or it could
            not start: see ``socket_problem``).
        socket_problem: why the CLI cannot reach the engine (None when it can).
        announcer: the registry listener that announces (re)definitions in the running
            cell while the extension is loaded; it must run after each new engine's own
            listener (see :func:`nbconductor.extension.lifecycle.announce_last`).
    """

    engine: Engine | None = None
    path: Path | None = None
    reason: str = ""
    problem: str | None = None
    shell: Any = None
    exit_hook: bool = False
    server: ControlServer | None = None
    socket_problem: str | None = None
    announcer: Callable[[Any, Any], None] | None = None


_state: KernelState = globals().get("_state") or KernelState()


def state() -> KernelState:
    """The process-wide extension state."""
    return _state


def kernel_engine() -> Engine | None:
    """The kernel's engine if it is running, else None."""
    engine = _state.engine
    return engine if engine is not None and engine.running else None


def require_engine() -> Engine:
    """The kernel's running engine.

    Raises:
        EngineStopped: with why there is none and what to do.
    """
    engine = kernel_engine()
    if engine is not None:
        return engine
    if _state.problem:
        raise EngineStopped(_state.problem)
    where = f" on {shown_path(_state.path)}" if _state.path else ""
    raise EngineStopped(
        f"the nbconductor engine is not running{where}; start it with `%conductor start` "
        "(or choose another history file with `%conductor db PATH`)"
    )


def shown_path(path: Path | str | None) -> str:
    """A path relative to the working directory when it is inside it (stable output)."""
    if path is None:
        return "?"
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def socket_path() -> Path | None:
    """The control socket the kernel's engine is served on, or None."""
    server = _state.server
    return server.socket_path if server is not None and server.running else None
