"""The kernel's engine: started on load, one per process, stopped on unload and exit.

The engine is a process-wide singleton kept in the extension's state
(:mod:`~nbconductor.extension.session`); this module is the only one that starts,
stops or replaces it: on load (:mod:`~nbconductor.extension.loader`), with
``%conductor start`` / ``stop`` / ``db``, and at interpreter exit. ``%reload_ext``
calls unload and then load: unload sees that it runs inside a reload and leaves the
engine running, so the reloaded extension picks up the very same engine.

Shutdown has no IPython event (see docs/jupyter-platform.md): the engine thread is a daemon,
stopped at interpreter exit (grace :data:`EXIT_GRACE`, history committed, file
closed); recovery never depends on that having happened.

Every engine started here is served on its control socket
(:class:`~nbconductor.remote.ControlServer`), so that the ``nbconductor`` command
reaches the kernel while it holds the history file. The server starts right after its
engine and stops before it; a server that cannot start (no private directory for the
socket, another live server on the path) costs the CLI its access, never the engine.
"""

from __future__ import annotations

import atexit
import collections
import os
import sys
import threading
from pathlib import Path
from typing import Any

from nbconductor.engine.default import default_engine
from nbconductor.engine.definition import REGISTRY
from nbconductor.engine.engine import Engine
from nbconductor.errors import EngineStopped, StoreError
from nbconductor.extension.notebook_path import DB_ENV, default_db_path, detect_notebook_path
from nbconductor.extension.session import kernel_engine, shown_path, state
from nbconductor.remote import ControlError, ControlServer, UnsafeSocketPath
from nbconductor.storage.records import Status

__all__ = (
    "EXIT_GRACE",
    "GRACE",
    "announce_last",
    "choose_path",
    "describe_open_executions",
    "register_exit_hook",
    "start_engine",
    "start_on_load",
    "stop_engine",
    "stop_on_unload",
    "switch_db",
)

_state = state()  # process-wide; its engine, server and path change only here

#: Seconds running tasks get to finish when the engine stops (unload, `stop`).
GRACE = 2.0
#: The same when the kernel exits. jupyter_client sends SIGTERM half-way through its
#: 5 s shutdown wait, and the kernel spends a few hundred ms getting from the
#: shutdown request to interpreter exit: the stop, commit and close must fit in that.
EXIT_GRACE = 1.5


# --- choosing and opening the history file ----------------------------------------------


def choose_path(shell: Any) -> tuple[Path, str]:
    """The history file for this kernel and a sentence on why (see notebook_path)."""
    path, _ = default_db_path(shell.user_ns)
    if os.environ.get(DB_ENV, "").strip():
        return path, f"from {DB_ENV}"
    notebook, source = detect_notebook_path(shell.user_ns)
    if notebook is not None:
        return path, f"next to the notebook {notebook.name}, its path from {source}"
    return path, _UNDETECTED


_UNDETECTED = (
    "the notebook's path was not detected, as under nbclient or nbval, so the working "
    "directory's default file is used"
)


def _open(path: Path, reason: str) -> str:
    """Start an engine on ``path``; return what to tell the user (problems included)."""
    _state.path, _state.reason = path, reason
    try:
        engine = _new_engine(path)
    except StoreError as exc:  # locked by another kernel, not a history file, too new
        _state.engine = None
        _unserve()
        _state.problem = (
            f"nbconductor could not open its history file: {exc}\n"
            "The extension is loaded without an engine. To carry on here, choose another "
            "file with `%conductor db other.duckdb` (or set NBCONDUCTOR_DB before "
            "`%load_ext nbconductor`), or stop the other kernel and run `%conductor start`."
        )
        return _state.problem
    _state.engine, _state.problem = engine, None
    return _started(engine, path, reason, _serve(engine))


def _new_engine(path: Path) -> Engine:
    engine = Engine(path, make_default=True)
    announce_last()  # after the new engine's own registry listener
    return engine


def _started(engine: Engine, path: Path, reason: str, socket_problem: str | None) -> str:
    lines = [f"nbconductor: engine started; history in {shown_path(path)} ({reason})."]
    if socket_problem is not None:
        lines.append(socket_problem)
    if reason == _UNDETECTED:
        lines.append(
            f"To use another file, set {DB_ENV} before loading or run `%conductor db PATH`."
        )
    summary = describe_open_executions(engine)
    if summary:
        lines.append(summary)
    return "\n".join(lines)


def describe_open_executions(engine: Engine) -> str:
    """``2 executions are waiting for their definitions: order ×1, report ×1 ...``."""
    # What the engine found open when it started: a fast execution may already have
    # finished by now, and the message must not depend on that race.
    records = getattr(engine, "recovered", None)
    if records is None:
        try:
            records = engine.list(status=Status.RUNNING, limit=None)
        except StoreError:
            return ""
    waiting = collections.Counter(
        r.workflow for r in records if REGISTRY.find("workflow", r.workflow) is None
    )
    resumed = collections.Counter(
        r.workflow for r in records if REGISTRY.find("workflow", r.workflow) is not None
    )
    lines = []
    if waiting:
        n = sum(waiting.values())
        lines.append(
            f"{n} execution{' is' if n == 1 else 's are'} waiting for "
            f"{'its definition' if n == 1 else 'their definitions'}: {_counts(waiting)}. "
            "Run the cells that define them and they carry on."
        )
    if resumed:
        n = sum(resumed.values())
        lines.append(
            f"Resuming {n} open execution{'s' * (n != 1)} whose definitions are in this "
            f"kernel: {_counts(resumed)}."
        )
    return "\n".join(lines)


def _counts(counter: collections.Counter) -> str:
    return ", ".join(f"{name} ×{n}" for name, n in sorted(counter.items()))


# --- the control socket -----------------------------------------------------------------------


def _serve(engine: Engine) -> str | None:
    """Serve ``engine`` on its control socket (replacing any earlier server).

    Returns None when it serves, else one line saying that the CLI cannot reach this
    kernel and why; the engine runs either way.
    """
    _unserve()
    try:
        # A stopped ControlServer cannot start again: always a new one.
        _state.server = ControlServer(engine).start()
    except (UnsafeSocketPath, ControlError, OSError) as exc:
        _state.server = None
        _state.socket_problem = f"{type(exc).__name__}: {exc}"
        return (
            "nbconductor: the `nbconductor` command cannot reach this kernel (no control "
            f"socket): {_state.socket_problem}"
        )
    _state.socket_problem = None
    return None


def _unserve(engine: Engine | None = None) -> None:
    """Stop the control server (only if it serves ``engine``, when one is given)."""
    server = _state.server
    if server is None or (engine is not None and server.engine is not engine):
        return
    _state.server = None
    server.stop()


# --- commands behind %conductor start / stop / db ------------------------------------------


def start_engine() -> str:
    """Start the kernel's engine on its history file (``%conductor start``)."""
    engine = kernel_engine()
    if engine is not None:
        return f"nbconductor: the engine is already running on {shown_path(engine.store.path)}."
    if _state.path is None:
        if _state.shell is None:
            raise EngineStopped("load the extension first: %load_ext nbconductor")
        _state.path, _state.reason = choose_path(_state.shell)
    return _open(_state.path, _state.reason)


def stop_engine(grace: float = GRACE) -> str:
    """Stop the kernel's engine (``%conductor stop``): tasks get ``grace`` seconds,
    history is committed and the file closed. Open executions resume at the next start."""
    engine, _state.engine = _state.engine, None
    _state.problem = None
    if engine is None or not engine.running:
        _unserve()  # a server left by an engine whose thread died
        return "nbconductor: the engine is not running."
    return _stop(engine, grace)


def _stop(engine: Engine, grace: float) -> str:
    open_count = engine.status().get("open_executions", 0)
    _unserve(engine)  # first: no request may reach an engine that is stopping
    # Views redraw on another thread, and cannot read a stopped engine: the changes of
    # the cells just run (a schedule resumed a moment ago) must reach them first. No
    # view was ever shown if the widgets are not even imported (a headless worker).
    views = sys.modules.get("nbconductor.widgets.coalescer")
    if views is not None:
        views.shared().flush()
    engine.stop(grace=grace)
    tail = ""
    if open_count:
        verb = "resumes" if open_count == 1 else "resume"
        tail = f"; {open_count} open execution{'s' * (open_count != 1)} {verb} when it starts again"
    return (
        f"nbconductor: engine stopped; history committed to {shown_path(engine.store.path)}{tail}."
    )


def switch_db(path: str | os.PathLike[str] | None) -> str:
    """Show the history file, or move the engine to another one (``%conductor db``).

    The new file is opened before the old one is let go, so a file that cannot be
    opened (locked by another kernel, not a history) leaves the engine where it was.
    """
    if path is None:
        if _state.path is None:
            return "nbconductor: no history file chosen yet (load the extension first)."
        engine = kernel_engine()
        running = "the engine is running" if engine else "the engine is not running"
        return f"nbconductor: history in {shown_path(_state.path)} ({_state.reason}); {running}."
    target = Path(path).expanduser()
    if not target.is_absolute():
        target = Path.cwd() / target
    previous = kernel_engine()
    if previous is None:
        return _open(target, _CHOSEN)
    if previous.store.path == str(target.resolve()):
        return f"nbconductor: already using {shown_path(target)}."
    try:
        engine = _new_engine(target)
    except StoreError as exc:
        return (
            f"nbconductor could not open {shown_path(target)}: {exc}\n"
            f"The engine stays on {shown_path(previous.store.path)}."
        )
    _state.engine, _state.path, _state.reason, _state.problem = engine, target, _CHOSEN, None
    stopped = _stop(previous, GRACE)  # stops the old file's server too
    return "\n".join([stopped, _started(engine, target, _CHOSEN, _serve(engine))])


_CHOSEN = "chosen with %conductor db"


# --- load, unload, exit ----------------------------------------------------------------


def start_on_load(shell: Any) -> None:
    """Give the kernel its engine when the extension loads (nothing when it has one).

    A running default engine on the chosen file is adopted, never opened twice; else the
    file is opened, and what happened is printed (on stderr when there is no engine).
    """
    if kernel_engine() is not None:
        return  # a reload, or a second load: same engine, nothing new to say
    path, reason = choose_path(shell)
    adopted = _adopt(path)
    if adopted is not None:
        _state.engine, _state.path, _state.reason, _state.problem = adopted, path, reason, None
        problem = _serve(adopted)
        if problem is not None:
            print(problem, file=sys.stderr)
        return
    message = _open(path, reason)
    print(message, file=sys.stderr if _state.engine is None else sys.stdout)


def stop_on_unload() -> None:
    """Stop the kernel's engine when the extension unloads, except inside
    ``%reload_ext``: there the engine keeps running for the load that follows."""
    if _called_from_reload():
        return
    if _state.engine is not None:
        print(stop_engine())


def announce_last() -> None:
    """Put the extension's announcing registry listener (if loaded) last.

    Listeners run in the order they were added. The announcement waits for the
    engine to replay the executions a definition resumes, which the engine's own
    listener sets off: ours must come after it, also after `%conductor start`/`db`
    made a new engine.
    """
    announcer = _state.announcer
    if announcer is None:
        return
    REGISTRY.remove_listener(announcer)  # the same function across reloads
    REGISTRY.add_listener(announcer)


def _adopt(path: Path) -> Engine | None:
    # A running default engine on the same file (this module's state was lost, e.g.
    # deleted from sys.modules and imported afresh): use it, never open a second one.
    try:
        engine = default_engine()
    except EngineStopped:
        return None
    same = engine.store.path is not None and engine.store.path == str(path.resolve())
    return engine if same else None


def _called_from_reload() -> bool:
    """Whether IPython's ``ExtensionManager.reload_extension`` is on the call stack."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "reload_extension" and str(
            frame.f_globals.get("__name__", "")
        ).startswith("IPython."):
            return True
        frame = frame.f_back
    return False


def register_exit_hook() -> None:
    """Stop the engine when the interpreter exits (registered once per process).

    At exit Python first runs threading's own exit hooks, then joins every
    non-daemon thread (the task pool's workers: a hung task blocks here until the
    client kills the kernel), and only then runs ``atexit`` handlers. The engine is
    stopped from threading's hook, so history is committed and the file closed before
    that join; ``atexit`` is the fallback where that private hook does not exist.
    Stopping twice is harmless.
    """
    if _state.exit_hook:
        return
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(_stop_at_exit)
    atexit.register(_stop_at_exit)
    _state.exit_hook = True


def _stop_at_exit() -> None:
    engine = _state.engine
    _unserve()
    if engine is not None:
        _state.engine = None
        engine.stop(grace=EXIT_GRACE)
