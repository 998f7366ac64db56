"""The process-wide default engine: what ``nbconductor.engine()`` and
``workflow.start()`` use when no engine is given.

A holder typed by a protocol, so that definitions reach an engine without importing
the engine's machinery; the :class:`~nbconductor.engine.engine.Engine` registers
itself here.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from nbconductor.errors import EngineStopped


class DefaultEngine(Protocol):
    """What definitions and callers need from the default engine."""

    @property
    def running(self) -> bool: ...

    def start(self, workflow: Any, *args: Any, id: str | None = None, **kwargs: Any) -> Any: ...


_engine: DefaultEngine | None = None
_lock = threading.Lock()


def default_engine() -> Any:
    """The engine that ``workflow.start()`` uses when none is given.

    Raises:
        EngineStopped: no engine is running in this process.
    """
    engine = _engine
    if engine is None or not engine.running:
        raise EngineStopped(
            "no engine is running in this process; create one with nbconductor.Engine(path) "
            "(in a notebook, %load_ext nbconductor starts one)"
        )
    return engine


def set_default_engine(engine: DefaultEngine | None) -> None:
    """Make ``engine`` the process's default (None: no default)."""
    global _engine
    with _lock:
        _engine = engine


def clear_default_engine(engine: DefaultEngine) -> None:
    """Forget ``engine`` as the default, if it still is (it stopped)."""
    global _engine
    with _lock:
        if _engine is engine:
            _engine = None
