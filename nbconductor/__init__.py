"""nbconductor: a durable workflow engine that lives inside a Jupyter kernel.

Workflows are ordinary async Python that decide what happens; tasks do the work. Every
step is recorded in a history (a DuckDB file), so executions survive restarts.
"""

from __future__ import annotations

from nbconductor import engine
from nbconductor._version import __version__
from nbconductor.engine.definition import task, workflow
from nbconductor.engine.engine import Engine
from nbconductor.engine.handle import Handle
from nbconductor.engine.retention import RetentionPolicy
from nbconductor.engine.retry import Retry
from nbconductor.engine.runners import DaskRunner, ProcessRunner
from nbconductor.engine.task_runner import TaskInfo, cancelled, heartbeat, task_info
from nbconductor.engine.workflow_api import (
    ChildHandle,
    Saga,
    child,
    continue_as_new,
    deprecate_patch,
    gather,
    now,
    patched,
    progress,
    race,
    random,
    side_effect,
    signal,
    signals,
    sleep,
    sleep_until,
    start_child,
    state,
    uuid4,
    wait_condition,
)
from nbconductor.errors import (
    ApplicationError,
    ChildFailed,
    EngineStopped,
    ExecutionAlreadyExists,
    ExecutionClosed,
    ExecutionFailed,
    ExecutionNotFound,
    NbconductorError,
    NonDeterminismError,
    NotInTask,
    QueueError,
    ScheduleError,
    StopTimedOut,
    StoreLocked,
    TaskFailed,
    TaskNotLoadable,
    UnknownRunner,
    UpdateRejected,
    WorkerLost,
)
from nbconductor.storage.codec import allow_types
from nbconductor.storage.records import Status

__all__ = (
    "ApplicationError",
    "ChildFailed",
    "ChildHandle",
    "DaskRunner",
    "Engine",
    "EngineStopped",
    "ExecutionAlreadyExists",
    "ExecutionClosed",
    "ExecutionFailed",
    "ExecutionNotFound",
    "Handle",
    "NbconductorError",
    "NonDeterminismError",
    "NotInTask",
    "ProcessRunner",
    "QueueError",
    "RetentionPolicy",
    "Retry",
    "Saga",
    "ScheduleError",
    "Status",
    "StopTimedOut",
    "StoreLocked",
    "TaskFailed",
    "TaskInfo",
    "TaskNotLoadable",
    "UnknownRunner",
    "UpdateRejected",
    "WorkerLost",
    "__version__",
    "allow_types",
    "cancelled",
    "child",
    "continue_as_new",
    "deprecate_patch",
    "engine",
    "gather",
    "heartbeat",
    "history",
    "now",
    "patched",
    "progress",
    "race",
    "random",
    "side_effect",
    "signal",
    "signals",
    "sleep",
    "sleep_until",
    "start_child",
    "state",
    "task",
    "task_info",
    "uuid4",
    "wait_condition",
    "workflow",
)


def history(**filters):
    """The live history table of this process's engine (what ``%conductor list`` shows).

    Filters: ``status`` (a name or a list), ``workflow``, ``search`` (id or tag text),
    ``range`` (``"1h"``, ``"24h"``, ``"7d"``), ``since``/``until``, ``sort``,
    ``descending``, ``page_size``.

    Example:
        >>> nbconductor.history(status=["failed"], range="24h")
    """
    from nbconductor import widgets

    return widgets.history_table(engine(), **filters)


def load_ipython_extension(ipython):  # pragma: no cover - thin hook, tested via kernel tests
    """Called by ``%load_ext nbconductor``."""
    from nbconductor.extension import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython):  # pragma: no cover
    """Called by ``%unload_ext nbconductor``."""
    from nbconductor.extension import unload_ipython_extension as _unload

    _unload(ipython)
