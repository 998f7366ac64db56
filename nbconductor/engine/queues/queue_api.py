"""``engine.queues``: the public, thread-safe face of task queues.

Every change is handed to the engine thread (where
:mod:`~nbconductor.engine.queues.admission` applies it) and returns once committed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nbconductor.engine.queues.admission import Admission, QueueInfo
from nbconductor.engine.queues.spec import QueueSpec, check_queue_name
from nbconductor.errors import QueueError

_KEEP: Any = object()


class Queues:
    """``engine.queues``: named limits on how task attempts start, kept in the history
    file. A task joins one with ``@task(queue=NAME, priority=N)``.

    Example:
        >>> engine.queues.create("llm", concurrency=8, rate="60/minute")
        >>> engine.queues.list()
    """

    def __init__(self, admission: Admission, call: Callable[..., Any]) -> None:
        self._admission = admission
        self._call = call

    def create(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        rate: str | None = None,
        burst: int | None = None,
    ):
        """Create a queue: at most ``concurrency`` attempts of its tasks at once, and
        starts paced at ``rate`` per period (``"60/minute"``, ``"20/second"``,
        ``"5/10s"``): one every period/count, so ``"20/second"`` starts one every 50 ms.
        ``burst=B`` lets B start at once after a quiet spell (default 1: none).

        Returns:
            The new queue's :class:`QueueInfo`.

        Raises:
            QueueError: the name is taken or a limit is malformed.
        """
        spec = QueueSpec.create(name, concurrency=concurrency, rate=rate, burst=burst)

        def create() -> QueueInfo:
            if self._admission.get(name) is not None:
                raise QueueError(
                    f"a queue named {name!r} exists already; change it with "
                    "engine.queues.update(...) or delete it first"
                )
            self._admission.save(spec)
            return self._info(name)

        return self._call(create)

    def update(
        self, name: str, *, concurrency: Any = _KEEP, rate: Any = _KEEP, burst: Any = _KEEP
    ) -> QueueInfo:
        """Change a queue's limits; a limit not given stays, ``None`` removes it (a
        burst goes back to 1, and goes with the rate when the rate is removed).

        Raises:
            QueueError: no queue has that name, or a limit is malformed.
        """
        check_queue_name(name)

        def update() -> QueueInfo:
            old = self._require(name)
            new_rate = old.rate if rate is _KEEP else rate
            kept_burst = old.burst if new_rate is not None else None
            new_burst = kept_burst if burst is _KEEP else burst
            spec = QueueSpec.create(
                name,
                concurrency=old.concurrency if concurrency is _KEEP else concurrency,
                rate=new_rate,
                burst=new_burst,
            )
            self._admission.save(spec)
            return self._info(name)

        return self._call(update)

    def delete(self, name: str) -> None:
        """Delete a queue; attempts waiting in it start at once, without limits. Tasks
        that still name it fail when next scheduled.

        Raises:
            QueueError: no queue has that name.
        """
        check_queue_name(name)

        def delete() -> None:
            self._require(name)
            self._admission.delete(name)

        self._call(delete)

    def list(self) -> list[QueueInfo]:
        """Every queue, by name, with how many attempts run and wait in it now."""
        return self._call(self._admission.infos)

    def get(self, name: str) -> QueueInfo:
        """One queue's :class:`QueueInfo`.

        Raises:
            QueueError: no queue has that name.
        """
        return self._call(lambda: (self._require(name), self._info(name))[1])

    def _require(self, name: str) -> QueueSpec:
        spec = self._admission.get(name)
        if spec is None:
            known = ", ".join(self._admission.names()) or "none"
            raise QueueError(
                f"no queue named {name!r} (queues: {known}); create it with "
                "engine.queues.create(name, concurrency=..., rate=...)"
            )
        return spec

    def _info(self, name: str) -> QueueInfo:
        return next(i for i in self._admission.infos() if i.name == name)
