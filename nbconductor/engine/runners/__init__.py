"""Where task attempts run: the runner interface and the built-in runners.

A runner only runs code; everything that decides (retries, timeouts, history) stays
on the engine thread. ``thread`` (the default) and ``process`` are built in; an
engine's :class:`~nbconductor.engine.runners.runner_set.RunnerSet` holds them by name.
"""

from __future__ import annotations

from nbconductor.engine.runners.dask_runner import DaskRunner
from nbconductor.engine.runners.process import ProcessRunner
from nbconductor.engine.runners.runner import AttemptEvents, Runner
from nbconductor.engine.runners.runner_set import RunnerSet
from nbconductor.engine.runners.thread import ThreadRunner

__all__ = ("AttemptEvents", "DaskRunner", "ProcessRunner", "Runner", "RunnerSet", "ThreadRunner")
