"""An engine's runners by name: ``thread`` and ``process`` built in, others added."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping

from nbconductor.engine.runners.process import ProcessRunner
from nbconductor.engine.runners.runner import Runner
from nbconductor.engine.runners.thread import ThreadRunner
from nbconductor.errors import UnknownRunner

BUILT_IN = ("thread", "process")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def check_runner_name(name: object) -> str:
    """``name`` if it can name a runner; otherwise a clear error."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise UnknownRunner(
            f"runner={name!r} is not a runner name: use 'thread' (the default), 'process', "
            "or a name given to engine.add_runner(...) (letters, digits, '_', '-', '.')"
        )
    return name


class RunnerSet:
    """The runners of one engine. ``process`` starts its pool on first use.

    Args:
        thread_workers: threads of the built-in ``thread`` runner.
        runners: more runners by name (``{"cluster": DaskRunner(client)}``).
    """

    def __init__(self, thread_workers: int = 32, runners: Mapping[str, Runner] | None = None):
        self.thread = ThreadRunner(thread_workers)
        self._lock = threading.Lock()
        self._runners: dict[str, Runner] = {"thread": self.thread}
        self._owned: list[Runner] = [self.thread]  # what this set made, and shuts down
        self._closed = False
        for name, runner in (runners or {}).items():
            self.add(name, runner)

    def add(self, name: str, runner: Runner) -> None:
        """Make ``runner`` available as ``name`` (replacing a runner of that name; the
        engine never shuts a runner it was given down: its owner does)."""
        check_runner_name(name)
        if name == "thread":
            raise UnknownRunner("'thread' is the built-in thread runner; pick another name")
        for method in ("submit", "stop", "shutdown"):
            if not callable(getattr(runner, method, None)):
                raise UnknownRunner(
                    f"runner {name!r}: {runner!r} has no {method}() method; give a runner "
                    "such as nc.ProcessRunner() or nc.DaskRunner(client)"
                )
        with self._lock:
            self._runners[name] = runner

    def names(self) -> list[str]:
        """Every runner name this engine knows (``process`` even before its first use)."""
        with self._lock:
            return sorted(set(self._runners) | set(BUILT_IN))

    def get(self, name: str) -> Runner:
        """The runner called ``name``; the built-in ``process`` pool is made on first use.

        Raises:
            UnknownRunner: no runner has that name (the message lists the known ones).
        """
        runner = self._runners.get(name)
        if runner is not None:
            return runner
        with self._lock:
            runner = self._runners.get(name)
            if runner is None and name == "process" and not self._closed:
                runner = self._runners["process"] = ProcessRunner()
                self._owned.append(runner)
        if runner is None:
            raise UnknownRunner(
                f"no runner named {name!r} on this engine (known: {', '.join(self.names())}); "
                "add it with engine.add_runner(name, runner) or %conductor runner add"
            )
        return runner

    def shutdown(self) -> None:
        """Shut the built-in runners down (kills the process pool's children). Runners
        the user added are the user's: a Dask client may serve other engines too."""
        with self._lock:
            self._closed = True
            owned = list(self._owned)
        for runner in owned:
            runner.shutdown()
