"""The headless worker: ``nbconductor worker NOTEBOOK.ipynb``.

A worker is a kernel without a browser. It opens the engine on the history file a
kernel would use for the notebook, loads the extension into an IPython shell (no
kernel), runs the notebook's code cells (only those tagged ``nbconductor`` when any
are tagged), and then serves: open executions whose definitions the cells made carry
on, schedules fire, and the control socket answers the ``nbconductor`` command. It
stops on SIGTERM or SIGINT: the control server first, then the engine (running tasks
get a bounded grace period, history is committed and the file closed).

What happens is logged to stderr, one line per state change (the worker's own, a cell
that failed, an execution whose status changed) and the engine's ``logging`` records at
INFO and above (a task that failed, an execution parked: :mod:`nbconductor.logs`), as
text or as JSON lines::

    2026-11-22T17:00:00Z execution order-17 (order) running -> completed
    2026-11-22T17:00:01Z ERROR task charge attempt 3 of execution order-18 (order) ...

Exit codes: 0 after a signal stopped it, 1 when a cell failed (without
``--keep-going``) or the engine stopped on an error, 2 when it could not start (no
such notebook, the history file is held by another process, ...).

Example:
    >>> run_worker("flows.ipynb", grace=5.0)   # returns 0 once SIGTERM arrives
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from nbconductor.engine.context import current as current_workflow
from nbconductor.engine.definition import REGISTRY
from nbconductor.engine.engine import Engine
from nbconductor.errors import StoreError
from nbconductor.extension.notebook_path import DB_ENV, default_db_path
from nbconductor.extension.state_log import StateLog
from nbconductor.storage.records import Status

__all__ = (
    "DEFAULT_GRACE",
    "TAG",
    "NotebookCell",
    "StateLog",
    "Worker",
    "notebook_cells",
    "run_worker",
    "worker_db_path",
)

#: Seconds running tasks get to finish when the worker stops.
DEFAULT_GRACE = 10.0
#: Cells with this tag are the only ones a worker runs, when a notebook has any.
TAG = "nbconductor"

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# --- the notebook ----------------------------------------------------------------------


@dataclass(frozen=True)
class NotebookCell:
    """A code cell to run.

    Attributes:
        number: its 1-based position in the notebook, markdown cells included.
        source: its code.
    """

    number: int
    source: str

    @property
    def first_line(self) -> str:
        """The first non-blank line, to name the cell in messages."""
        for line in self.source.splitlines():
            if line.strip():
                return line.strip()[:80]
        return ""


def notebook_cells(path: str | os.PathLike[str]) -> tuple[list[NotebookCell], bool]:
    """The code cells a worker runs, and whether tags chose them.

    Every code cell runs, unless some carry the tag ``nbconductor`` (cell metadata
    ``tags``): then only those do.

    Raises:
        ValueError: the file is not a Jupyter notebook.
        OSError: it cannot be read.
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        notebook = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not a notebook: not JSON ({exc})") from None
    if not isinstance(notebook, dict):
        raise ValueError(f"{path} is not a notebook: no cells")
    if notebook.get("nbformat", 4) < 4:
        # Reading format 4 directly spares the second it takes to import nbformat (its
        # JSON schema validation); older notebooks are converted by nbformat.
        import nbformat

        try:
            notebook = nbformat.reads(text, as_version=4)
        except Exception as exc:  # nbformat's reader and validation errors
            raise ValueError(f"{path} is not a notebook nbformat can read: {exc}") from None
    cells = notebook.get("cells")
    if not isinstance(cells, list):
        raise ValueError(f"{path} is not a notebook: no cells")
    code = [
        (number, cell)
        for number, cell in enumerate(cells, start=1)
        if isinstance(cell, dict) and cell.get("cell_type") == "code"
    ]
    tagged = [(n, c) for n, c in code if TAG in ((c.get("metadata") or {}).get("tags") or ())]
    chosen = tagged or code
    return [NotebookCell(n, _source(c.get("source", ""))) for n, c in chosen], bool(tagged)


def _source(value: Any) -> str:
    # nbformat 4 stores a cell's source as one string or as a list of lines.
    return "".join(value) if isinstance(value, list) else str(value)


def worker_db_path(
    notebook: Path,
    db: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
    cwd: Path | None = None,
) -> tuple[Path, str]:
    """The history file of a worker on ``notebook``, and where that choice came from.

    ``db`` (``--db``), else ``NBCONDUCTOR_DB``, else ``.nbconductor/<stem>.duckdb``
    beside the notebook: the file a kernel running the notebook uses. Relative paths
    are taken from ``cwd`` (the directory the command runs in), like every other
    ``nbconductor`` command.
    """
    base = Path.cwd() if cwd is None else cwd
    if db is not None and os.fspath(db).strip():
        path = Path(db).expanduser()
        return (path if path.is_absolute() else base / path).resolve(), "from --db"
    # The notebook's path, as a kernel started by VS Code knows it.
    path, _ = default_db_path({"__vsc_ipynb_file__": str(notebook)}, environ, base)
    if environ.get(DB_ENV, "").strip():
        return path.resolve(), f"from {DB_ENV}"
    return path.resolve(), f"next to the notebook {notebook.name}"


# --- the worker ------------------------------------------------------------------------


class _LiveOutput:
    """A stream proxy that drops what workflow code prints while it replays.

    In a worker, what tasks and workflows print goes to the worker's stdout (there is
    no cell to protect); replayed code printed the same lines once already.
    """

    def __init__(self, original: TextIO) -> None:
        self.original = original

    def write(self, text: str) -> int:
        runtime = current_workflow()
        if runtime is not None and runtime.replaying:
            return len(text)
        return self.original.write(text)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


class Worker:
    """Runs a notebook headless and serves its engine until stopped.

    Args:
        notebook: the ``.ipynb`` file.
        db: the history file (default: the one a kernel would use, see
            :func:`worker_db_path`).
        grace: seconds running tasks get to finish when the worker stops.
        keep_going: run the remaining cells after one fails, and serve anyway.
        json_logs: log JSON lines instead of text.
        log_stream: where the log goes (default ``sys.stderr``).
    """

    def __init__(
        self,
        notebook: str | os.PathLike[str],
        *,
        db: str | os.PathLike[str] | None = None,
        grace: float = DEFAULT_GRACE,
        keep_going: bool = False,
        json_logs: bool = False,
        log_stream: TextIO | None = None,
    ) -> None:
        self.notebook = Path(notebook).expanduser().absolute()
        self.db_option = db
        self.grace = grace
        self.keep_going = keep_going
        self.log = StateLog(log_stream or sys.stderr, json_lines=json_logs)
        self.db: Path | None = None
        self.socket: Path | None = None
        self._stop = threading.Event()
        self._reason = ""
        self._in_cell = False

    # -- logging --------------------------------------------------------------------

    def _worker_event(self, state: str, message: str) -> None:
        self.log.emit(
            "worker",
            f"worker {state}: {message}",
            state=state,
            message=message,
            pid=os.getpid(),
            notebook=str(self.notebook),
            db=str(self.db) if self.db is not None else None,
            socket=str(self.socket) if self.socket is not None else None,
        )

    # -- running ----------------------------------------------------------------------

    def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT, stop; returns the exit code."""
        self.log.attach()  # the engine's records too, in the same format
        try:
            return self._run()
        finally:
            self.log.detach()

    def _run(self) -> int:
        try:
            cells, tagged = notebook_cells(self.notebook)
        except (OSError, ValueError) as exc:
            self._worker_event("failed", f"cannot read the notebook: {exc}")
            return EXIT_USAGE
        self.db, reason = worker_db_path(self.notebook, self.db_option)
        chosen = (
            f"the {len(cells)} cells tagged {TAG}" if tagged else f"all {len(cells)} code cells"
        )
        self._worker_event(
            "starting", f"history {self.db} ({reason}); running {chosen} of {self.notebook.name}"
        )
        with self._signals(), self._environment():
            try:
                engine = Engine(self.db, make_default=True)
            except (StoreError, OSError) as exc:  # held by a kernel, not a history, no access
                self._worker_event("failed", str(exc))
                return EXIT_USAGE
            self.log.watch(engine)
            try:
                return self._serve(engine, cells)
            finally:
                self._shut_down(engine)

    def _serve(self, engine: Engine, cells: list[NotebookCell]) -> int:
        from nbconductor.extension import output, session

        shell = _shell()
        # The extension adopts the engine and serves it; what it would say on stderr
        # goes to stdout with the cells' output, so that stderr holds the log only.
        with contextlib.redirect_stderr(sys.stdout):
            shell.run_line_magic("load_ext", "nbconductor")
        output.uninstall()  # see _LiveOutput: output goes to stdout, not to logs
        sys.stdout, sys.stderr = _LiveOutput(sys.stdout), _LiveOutput(sys.stderr)
        state = session.state()
        if state.engine is not engine:
            self._worker_event("failed", state.problem or "the extension did not take the engine")
            return EXIT_FAILED
        if state.server is None:
            # The engine works; only `nbconductor status` and friends cannot reach it.
            self._worker_event(
                "warning",
                f"the nbconductor command cannot reach this worker: {state.socket_problem}",
            )
        else:
            self.socket = state.server.socket_path
        failed = self._run_cells(shell, cells)
        if failed and not self.keep_going:
            self._reason = "a cell failed"
            return EXIT_FAILED
        if self._stop.is_set():
            return EXIT_OK
        try:
            engine.ping(timeout=30)  # the resumes that the definitions set off are done
        except TimeoutError:
            self._worker_event(
                "warning", "the engine thread is busy (workflow code that blocks?); serving anyway"
            )
        self._worker_event("ready", _summary(engine, len(cells), failed, self.socket))
        while not self._stop.wait(0.5):
            if not engine.running:
                self._worker_event("failed", f"the engine stopped: {engine.error!r}")
                self._reason = "the engine stopped"
                return EXIT_FAILED
        return EXIT_OK

    def _run_cells(self, shell: Any, cells: list[NotebookCell]) -> int:
        """Run the cells in order; returns how many failed."""
        failed = 0
        for cell in cells:
            if self._stop.is_set():
                break
            shell.execution_count = cell.number  # tracebacks say "Cell In[<position>]"
            try:
                self._in_cell = True
                result = shell.run_cell(cell.source, store_history=False)
                error = result.error_before_exec or result.error_in_exec
            except KeyboardInterrupt as exc:  # the stop signal, outside the user's code
                error = exc
            finally:
                self._in_cell = False
            if error is None:
                continue
            if self._stop.is_set() and isinstance(error, KeyboardInterrupt):
                break  # interrupted to stop, not a failure of the cell
            failed += 1
            message = f"{type(error).__name__}: {error}"
            self.log.emit(
                "cell",
                f"cell {cell.number} ({cell.first_line!r}) failed: {message}",
                cell=cell.number,
                first_line=cell.first_line,
                status="failed",
                error={"type": type(error).__name__, "message": str(error)},
            )
            if not self.keep_going:
                break
        return failed

    def _shut_down(self, engine: Engine) -> None:
        from nbconductor.extension import lifecycle, session

        why = f" ({self._reason})" if self._reason else ""
        self._worker_event("stopping", f"running tasks get up to {self.grace:g} s{why}")
        try:
            open_count = engine.status().get("open_executions", 0)
        except Exception:  # an engine that stopped on an error may have lost its store
            open_count = 0
        if session.state().engine is engine:
            lifecycle.stop_engine(self.grace)  # the control server, then the engine
        else:  # the extension never took it (it failed to load)
            engine.stop(grace=self.grace)
        self.socket = None
        self.log.close(self.db)
        open_count = _open_executions(self.db, default=open_count)
        text = f"history committed to {self.db}"
        if engine.error is not None:
            text = f"the engine ended with {engine.error!r}; committed history is in {self.db}"
        if open_count:
            verb = "resumes" if open_count == 1 else "resume"
            text += (
                f"; {open_count} open execution{'s' * (open_count != 1)} {verb} when an "
                "engine opens the file again"
            )
        self._worker_event("stopped", text)

    # -- process state ------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: Any) -> None:
        # No logging here: the handler runs between two bytecodes of the main thread,
        # which may be holding the log's lock.
        if self._stop.is_set():
            return  # stopping already; the grace period bounds it
        self._reason = signal.Signals(signum).name
        self._stop.set()
        if self._in_cell:
            raise KeyboardInterrupt  # a cell that blocks must not hold up the stop

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach the main thread only; the caller stops us otherwise
            return
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    @contextlib.contextmanager
    def _environment(self) -> Iterator[None]:
        """The notebook's directory as cwd, and the history file in NBCONDUCTOR_DB.

        The extension chooses its file from NBCONDUCTOR_DB, so it adopts the engine the
        worker opened; cells and subprocesses see the same file a kernel would give.
        """
        cwd, db_env = os.getcwd(), os.environ.get(DB_ENV)
        streams = sys.stdout, sys.stderr
        os.environ[DB_ENV] = str(self.db)
        os.chdir(self.notebook.parent)
        try:
            yield
        finally:
            sys.stdout, sys.stderr = streams
            os.chdir(cwd)
            if db_env is None:
                os.environ.pop(DB_ENV, None)
            else:
                os.environ[DB_ENV] = db_env

    def stop(self) -> None:
        """Ask a running worker to stop, from any thread: as SIGTERM does, except that
        a cell still running is not interrupted (the stop waits for it)."""
        self._reason = self._reason or "stop()"
        self._stop.set()


def _shell() -> Any:
    """The process's IPython shell (no kernel), with its history kept in memory."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    # No writes to ~/.ipython/.../history.sqlite, and no history thread.
    config.HistoryManager.hist_file = ":memory:"
    if not sys.stdout.isatty():
        config.InteractiveShell.colors = "nocolor"  # tracebacks in logs, not terminals
    return InteractiveShell.instance(config=config)


def _open_executions(db: Path | None, *, default: int) -> int:
    """How many executions the closed history file holds open (``default`` when it
    cannot be read, e.g. because the engine did not let go of it)."""
    from nbconductor.storage.duckdb.duckdb_store import DuckDBStore

    if db is None:
        return default
    try:
        with DuckDBStore(db, read_only=True) as store:
            return store.counts_by_status().get(Status.RUNNING, 0)
    except Exception:  # only a number in the last log line: never fail the exit for it
        return default


def _summary(engine: Engine, cells: int, failed: int, socket: Path | None) -> str:
    info = engine.status()
    parts = [f"ran {cells - failed} of {cells} cells" if failed else f"ran {cells} cells"]
    parts.append(f"serving {socket}" if socket is not None else "no control socket")
    waiting = collections.Counter(
        r.workflow
        for r in engine.list(status=Status.RUNNING, limit=None)
        if REGISTRY.find("workflow", r.workflow) is None
    )
    open_count = info.get("open_executions", 0)
    text = f"{open_count} open execution{'s' * (open_count != 1)}"
    if waiting:
        names = ", ".join(f"{name} ×{n}" for name, n in sorted(waiting.items()))
        text += f" ({sum(waiting.values())} waiting for a definition the notebook lacks: {names})"
    parts.append(text)
    schedules = len(engine.schedules.list())
    parts.append(f"{schedules} schedule{'s' * (schedules != 1)}")
    return "; ".join(parts)


def run_worker(
    notebook: str | os.PathLike[str],
    *,
    db: str | os.PathLike[str] | None = None,
    grace: float = DEFAULT_GRACE,
    keep_going: bool = False,
    json_logs: bool = False,
) -> int:
    """Run ``notebook`` headless until SIGTERM/SIGINT (``nbconductor worker``).

    Returns:
        The exit code: 0 stopped by a signal, 1 a cell failed or the engine stopped on
        an error, 2 it could not start (unreadable notebook, history file held by
        another process, not a history file).
    """
    return Worker(notebook, db=db, grace=grace, keep_going=keep_going, json_logs=json_logs).run()
