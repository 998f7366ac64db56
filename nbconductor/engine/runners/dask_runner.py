"""``DaskRunner``: task attempts on a Dask distributed cluster.

The engine stays the single source of truth: Dask only runs code. Each attempt is one
Dask task with ``retries=0`` and a key of its own (``pure=False``). What happens on the
worker comes back on a Dask event topic: ``started`` (with the worker's address) and
throttled heartbeats. Dask re-running an attempt behind the history's back (the
scheduler's ``allowed-failures`` after a worker died) is detected by a second
``started`` for the same key, or, when the dead worker's ``started`` never left it, by
the scheduler's count of workers that died running the key: the attempt fails as
``WorkerLost`` and the re-run is cancelled. A dead worker (``KilledWorker``) is ``WorkerLost``; a worker that cannot
load the task (a missing module) is ``TaskNotLoadable``; a lost scheduler is said so.

``distributed`` is imported here only, and only when a DaskRunner is made.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
import time
import uuid
import warnings
from typing import Any

from nbconductor.engine import shipping
from nbconductor.engine.failure import Failure
from nbconductor.engine.runners import output_relay, remote_attempt
from nbconductor.engine.runners.process import encode_result
from nbconductor.engine.runners.runner import AttemptEvents
from nbconductor.engine.task_runner import Attempt, Outcome, attempt_context
from nbconductor.errors import TaskNotLoadable, WorkerLost

TOPIC = "nbconductor-attempts"
"""The prefix of each runner's Dask event topic (a client has one handler per topic, and
several engines may share a client)."""
HEARTBEAT_INTERVAL = 0.2
"""Seconds between two heartbeats sent from a worker at most (each is a message to the
scheduler and on to the client)."""
CANCEL_POLL = 0.1  # how often a running attempt looks whether it was cancelled


def run_on_worker(
    topic: str, key: str, name: str, fn_data: bytes, input_data: bytes, identity: bytes
) -> tuple:
    """What a Dask worker runs for one attempt (imported by name on the worker)."""
    from distributed import get_worker
    from distributed.worker import thread_state

    worker = get_worker()
    dask_key = getattr(thread_state, "key", None)
    worker.log_event(topic, ["started", key, worker.address])
    try:
        fn, args, kwargs = remote_attempt.load_call(
            name,
            fn_data,
            input_data,
            place=f"on Dask worker {worker.address}",
            remedy="Install it on the workers",
        )
    except TaskNotLoadable as error:
        return ("failed", Failure.from_exception(error, non_retryable=True), worker.address)
    last_sent = [0.0]

    def relay(attempt: Attempt) -> None:
        now = time.monotonic()
        if now - last_sent[0] < HEARTBEAT_INTERVAL:
            return
        last_sent[0] = now
        try:
            details = shipping.dumps(attempt.heartbeat_details)
        except Exception:
            details = shipping.dumps(repr(attempt.heartbeat_details))
        worker.log_event(topic, ["heartbeat", key, details, attempt.progress])

    attempt = remote_attempt.rebuild(identity, name, relay)
    done = threading.Event()

    def watch_for_cancel() -> None:
        # The client cancels the future when the engine abandons the attempt; the
        # worker then no longer wants this key: nc.cancelled() turns true.
        while not done.wait(CANCEL_POLL):
            task = worker.state.tasks.get(dask_key) if dask_key is not None else None
            if task is None or task.state in ("cancelled", "released", "forgotten"):
                attempt.cancel_requested = True
                return

    threading.Thread(target=watch_for_cancel, daemon=True).start()
    output_relay.install()  # what the task prints goes back to the engine's process
    # The last output travels with the result: an event sent as the task ends could
    # reach the client after it.
    rest: list = []
    try:
        with (
            output_relay.relaying(
                lambda pieces: worker.log_event(topic, ["output", key, pieces]),
                HEARTBEAT_INTERVAL,
                rest=rest,
            ),
            attempt_context(attempt),
        ):
            value = fn(*args, **kwargs)
    except BaseException as exc:
        return ("failed", Failure.from_exception(exc), worker.address, rest)
    finally:
        done.set()
    try:
        return ("result", shipping.dumps(value), worker.address, rest)
    except Exception as exc:
        error = Failure.from_exception(exc, non_retryable=True)
        return ("failed", error, worker.address, rest)


class _Running:
    __slots__ = ("attempt", "events", "future", "reported", "workers")

    def __init__(self, attempt: Attempt, events: AttemptEvents) -> None:
        self.attempt = attempt
        self.events = events
        self.future: Any = None
        self.reported = False
        self.workers: list[str] = []


class DaskRunner:
    """Task attempts on a Dask distributed cluster.

    Args:
        client: a ``distributed.Client``, or a scheduler address (``"tcp://host:8786"``)
            to connect to now. The engine never closes a client it was given.

    Example:
        >>> from dask.distributed import Client, LocalCluster
        >>> eng = nc.Engine("h.duckdb",
        ...                 runners={"cluster": nc.DaskRunner(Client(LocalCluster()))})
    """

    def __init__(self, client: Any) -> None:
        from distributed import Client

        self._owns_client = isinstance(client, str)
        self.client = Client(client, set_as_default=False) if self._owns_client else client
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._keys = itertools.count(1)
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()  # (key, running) to send
        self._sender: threading.Thread | None = None
        self._prefix = uuid.uuid4().hex[:8]
        self._topic = f"{TOPIC}-{self._prefix}"
        self.client.subscribe_topic(self._topic, self._on_event)
        self._reruns = self._warn_if_dask_reruns()

    def __repr__(self) -> str:
        return f"DaskRunner({self.client.scheduler.address!r})"

    def _warn_if_dask_reruns(self) -> bool:
        """Whether the scheduler may re-run a task whose worker died (warned if so)."""
        try:
            allowed = self.client.run_on_scheduler(_allowed_failures)
        except Exception:
            return True  # unknown: check each result (one scheduler round trip)
        if allowed:
            warnings.warn(
                f"the Dask scheduler re-runs a task up to {allowed} times when its worker "
                "dies (distributed.scheduler.allowed-failures); nbconductor detects such a "
                "re-run and fails the attempt as WorkerLost instead, so set it to 0 for "
                "attempts to fail at once",
                RuntimeWarning,
                stacklevel=3,
            )
        return bool(allowed)

    def submit(self, attempt: Attempt, events: AttemptEvents) -> None:
        """Queue ``attempt`` for the cluster; never blocks the engine thread.

        Loading its arguments (a stored frame, say), pickling them and handing them to
        the client take as long as the data is large, so a thread of the runner's
        does it, in submission order.
        """
        key = f"{self._prefix}-{next(self._keys)}"
        running = _Running(attempt, events)
        with self._lock:
            self._running[key] = running  # stop() finds it even before it is sent
            if self._sender is None:
                self._sender = threading.Thread(
                    target=self._send_queued, name="nbconductor-dask-submit", daemon=True
                )
                self._sender.start()
        self._outbox.put((key, running))

    def _send_queued(self) -> None:  # the runner's sending thread
        while True:
            item = self._outbox.get()
            if item is None:
                return
            self._send(*item)

    def _send(self, key: str, running: _Running) -> None:
        if running.reported:  # stopped before it was sent
            self._forget(key)
            return
        attempt = running.attempt
        name = attempt.definition.name
        try:
            fn_data = shipping.ship_function(attempt.definition.fn, name)
            args, kwargs = attempt.payloads.decode_input(attempt.input_text)
            input_data = shipping.dumps((args, kwargs))
        except Exception as exc:
            error = Failure.from_exception(exc, non_retryable=True)
            self._report(key, Outcome(attempt, error=error))
            return
        resources = dict(attempt.definition.options.resources or ()) or None
        try:
            future = self.client.submit(
                run_on_worker,
                self._topic,
                key,
                name,
                fn_data,
                input_data,
                remote_attempt.identity(attempt),
                key=f"nbconductor-{name}-{key}",
                pure=False,
                retries=0,
                resources=resources,
            )
        except Exception as exc:
            self._report(key, Outcome(attempt, error=self._lost_scheduler(exc)))
            return
        running.future = future
        if running.reported:  # stopped while it was being sent
            future.cancel()
        future.add_done_callback(lambda f: self._done(key, f))

    def stop(self, attempt: Attempt) -> None:
        """Cancel the attempt's Dask future; on the worker ``nc.cancelled()`` turns true."""
        with self._lock:
            found = [r for r in self._running.values() if r.attempt is attempt]
        for running in found:
            running.reported = True  # abandoned: whatever comes back is ignored
            if running.future is not None:
                running.future.cancel()

    def shutdown(self) -> None:
        """Forget running attempts; close the client only if this runner opened it."""
        with self._lock:
            running = list(self._running.values())
            self._running.clear()
            sender, self._sender = self._sender, None
        for item in running:
            item.reported = True  # one still queued is not sent
            if item.future is not None:
                item.future.cancel()
        if sender is not None:
            self._outbox.put(None)
        with contextlib.suppress(Exception):  # the client may be closed already
            self.client.unsubscribe_topic(self._topic)
        if self._owns_client:
            self.client.close()

    # ------------------------------------------------------------ from the cluster

    def _on_event(self, event: tuple) -> None:  # on the client's event loop: be quick
        _, message = event
        kind, key = message[0], message[1]
        with self._lock:
            running = self._running.get(key)
        if running is None or running.reported:
            return
        if kind == "started":
            running.workers.append(message[2])
            if len(running.workers) == 1:
                running.events.started(running.attempt, message[2])
                return
            self._rerun(key, running, message[2])
        elif kind == "heartbeat":
            running.events.heartbeat(running.attempt, shipping.loads(message[2]), message[3])
        elif kind == "output":
            output_relay.write_as(running.attempt, message[2])

    def _done(self, key: str, future: Any) -> None:  # on a thread of its own
        with self._lock:
            running = self._running.get(key)
        if running is None or running.reported:
            self._forget(key)
            return
        attempt = running.attempt
        started = attempt.started_at
        if future.status == "finished":
            try:
                kind, payload, address, *rest = future.result()
            except Exception as exc:
                outcome = Outcome(attempt, error=self._lost_scheduler(exc), started_at=started)
            else:
                if rest:
                    output_relay.write_as(attempt, rest[0])
                if running.workers and address != running.workers[0]:
                    # The result of a re-run whose "started" has not arrived yet.
                    self._rerun(key, running, address)
                    return
                if self._reruns and self._died_running(future.key):
                    # A re-run whose lost predecessor's "started" never left its worker.
                    self._rerun(key, running, address)
                    return
                if kind == "failed":
                    outcome = Outcome(attempt, error=payload, started_at=started)
                else:
                    try:
                        value = shipping.loads(payload)
                    except Exception as exc:
                        error = Failure.from_exception(exc, non_retryable=True)
                        outcome = Outcome(attempt, error=error, started_at=started)
                    else:
                        outcome = encode_result(attempt, value)
        elif future.status == "error":
            outcome = Outcome(attempt, error=self._error(attempt, future), started_at=started)
        else:  # cancelled without the engine asking: the scheduler is gone
            outcome = Outcome(attempt, error=self._lost_scheduler(None), started_at=started)
        self._report(key, outcome)

    def _died_running(self, dask_key: str) -> bool:
        try:
            return bool(self.client.run_on_scheduler(_suspicious, key=dask_key))
        except Exception:
            return False  # the scheduler is gone: the result is all there is

    def _rerun(self, key: str, running: _Running, where: str) -> None:
        # Dask re-ran the attempt after its worker died: not behind the history's back.
        lost = running.workers[0] if running.workers and running.workers[0] != where else ""
        error = WorkerLost(
            f"Dask worker {lost or '(its address unknown)'} running task "
            f"{running.attempt.definition.name!r} was lost and the scheduler re-ran it on "
            f"{where}; that re-run does not count, and the task's retry policy decides"
        )
        if running.future is not None:
            # Maybe on the client's event loop, where a blocking cancel() cannot run.
            threading.Thread(target=running.future.cancel, daemon=True).start()
        outcome = Outcome(running.attempt, error=Failure.from_exception(error))
        outcome.started_at = running.attempt.started_at
        self._report(key, outcome)

    def _error(self, attempt: Attempt, future: Any) -> Failure:
        from distributed.scheduler import KilledWorker

        try:
            exc = future.exception()
        except Exception as lost:
            return self._lost_scheduler(lost)
        name = attempt.definition.name
        if isinstance(exc, KilledWorker):
            where = attempt.worker or "its worker"
            return Failure.from_exception(
                WorkerLost(
                    f"the Dask worker running task {name!r} ({where}) died mid-attempt; the "
                    "task's retry policy decides whether it runs again"
                )
            )
        if isinstance(exc, ImportError):
            return Failure.from_exception(
                TaskNotLoadable(
                    f"task {name!r} cannot be loaded on a Dask worker: module "
                    f"{getattr(exc, 'name', None) or exc!s} is missing there. Install it on "
                    "the workers (a retry would fail the same way)"
                ),
                non_retryable=True,
            )
        return Failure.from_exception(exc)

    def _lost_scheduler(self, exc: BaseException | None) -> Failure:
        address = getattr(self.client.scheduler, "address", "?")
        cause = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
        return Failure.from_exception(
            WorkerLost(
                f"lost contact with the Dask scheduler at {address}{cause}; the attempt's "
                "fate is unknown and the task's retry policy decides"
            )
        )

    def _report(self, key: str, outcome: Outcome) -> None:
        with self._lock:
            running = self._running.pop(key, None)
        if running is None or running.reported:
            return
        running.reported = True
        running.events.outcome(outcome)

    def _forget(self, key: str) -> None:
        with self._lock:
            self._running.pop(key, None)


def _allowed_failures(dask_scheduler: Any) -> int:
    return int(getattr(dask_scheduler, "allowed_failures", 0))


def _suspicious(dask_scheduler: Any, key: str) -> int:
    """How many workers died while running ``key`` (the scheduler's own count)."""
    task = dask_scheduler.tasks.get(key)
    return int(getattr(task, "suspicious", 0)) if task is not None else 0


__all__ = ("DaskRunner", "run_on_worker")
