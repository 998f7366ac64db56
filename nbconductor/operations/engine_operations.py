"""The operations carried out on an engine in this process.

What the control server runs for each request, and what ``%conductor`` runs in a
kernel: the same code, so a notebook and a terminal see the same results and errors.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from nbconductor._version import __version__
from nbconductor.operations.interface import Operations
from nbconductor.operations.shapes import (
    event_view,
    execution_view,
    iso,
    jsonable,
    prune_view,
    queue_view,
    schedule_view,
)
from nbconductor.operations.store_query import due_timers, sql_result
from nbconductor.storage.duckdb.parquet_export import export_parquet

if TYPE_CHECKING:
    from nbconductor.engine.engine import Engine

__all__ = ("EngineOperations",)


class EngineOperations(Operations):
    """The operations carried out on ``engine`` (what the control server and ``%conductor``
    run).

    Args:
        engine: the engine.
        socket_path: reported by ``status`` (the server passes its own).
    """

    live = True

    def __init__(self, engine: Engine, *, socket_path: str | None = None) -> None:
        self.engine = engine
        self.socket_path = socket_path

    def dispatch(self, op: str, args: dict[str, Any]) -> Any:
        """Run a checked ``op`` on the engine; a timeout waiting for the engine thread
        comes out as a TimeoutError that says so."""
        try:
            return super().dispatch(op, args)
        except TimeoutError as exc:
            if str(exc):
                raise
            # The engine's own wait for its thread ends in a bare TimeoutError.
            raise TimeoutError(
                f"the engine thread did not carry out {op} in time; it is busy, or stuck "
                "in workflow code that blocks (see `nbconductor status`)"
            ) from None

    def _op_ping(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "version": __version__, "protocol": 1}

    def _op_status(self) -> dict[str, Any]:
        engine = self.engine
        now = datetime.now(UTC)
        out: dict[str, Any] = {
            "engine": True,
            "pid": os.getpid(),
            "version": __version__,
            "socket": self.socket_path,
            "db": engine.store.path,
            "started_at": iso(engine.started_at),
            "uptime_seconds": round(max(0.0, (now - engine.started_at).total_seconds()), 3),
        }
        problems = []
        try:
            info = engine.status()
        except Exception as exc:  # a broken store: report it, the check must answer
            problems.append(f"the engine cannot report its state: {type(exc).__name__}: {exc}")
            info = {
                "running": engine.running,
                "error": repr(engine.error) if engine.error else None,
            }
        out.update(
            {
                "running": bool(info.get("running")),
                "error": info.get("error"),
                "open_executions": info.get("open_executions"),
                "waiting_for_definition": info.get("waiting_for_definition"),
                "blocked": info.get("blocked"),
                "pending_timers": info.get("pending_timers"),
                "due_timers": None,
                "running_tasks": info.get("running_tasks"),
                "counts": info.get("counts") or {},
            }
        )
        if not out["running"]:
            problems.append("the engine thread is not running")
        if out["error"]:
            problems.append(f"the engine stopped on an error: {out['error']}")
        out["responsive"] = self._responsive() if out["running"] else False
        if out["running"] and not out["responsive"]:
            problems.append("the engine thread did not answer within 2 s (busy or stuck)")
        if not problems:
            out["due_timers"] = due_timers(engine.store)
        try:
            out["schedules"] = len(engine.schedules.list())
        except Exception:
            out["schedules"] = None
        out["healthy"] = not problems
        out["problems"] = problems
        return out

    def _responsive(self) -> bool:
        # A round trip through the engine thread's inbox: a thread stuck in workflow
        # code (a blocking call in a workflow body) answers nothing.
        try:
            _barrier(self.engine, timeout=2.0)
        except Exception:
            return False
        return True

    def _op_list(self, **filters: Any) -> list[dict[str, Any]]:
        records = self.engine.list(
            status=filters.get("status") or None,
            name=filters.get("workflow"),
            since=filters.get("since"),
            until=filters.get("until"),
            limit=filters.get("limit", 100),
            offset=filters.get("offset", 0),
        )
        return [execution_view(r) for r in records]

    def _op_show(self, id: str) -> dict[str, Any]:
        engine = self.engine
        out = execution_view(engine.describe(id))
        out["waiting_signals"] = engine.waiting_signals(id)
        progress = engine.progress_of(id)
        out["progress"] = jsonable(progress)
        return out

    def _op_history(self, id: str) -> list[dict[str, Any]]:
        self.engine.describe(id)  # ExecutionNotFound for an unknown id
        return [event_view(e) for e in self.engine.history(id)]

    def _op_signal(self, id: str, name: str, payload: Any = None) -> dict[str, Any]:
        self.engine.signal(id, name, payload)
        return {"id": id, "signal": name, "delivered": True}

    def _op_cancel(self, id: str) -> dict[str, Any]:
        self.engine.cancel(id)
        return {"id": id, "cancel_requested": True, "delivered": True}

    def _op_terminate(self, id: str, reason: str | None = None) -> dict[str, Any]:
        self.engine.terminate(id, reason)
        return {"id": id, "terminated": True}

    def _op_start(
        self,
        workflow: str,
        args: list | None = None,
        kwargs: dict | None = None,
        id: str | None = None,
    ) -> dict[str, Any]:
        # By name only: the registry holds what this engine's process defined; nothing
        # sent over the socket is ever imported or evaluated.
        definition = self.engine.registry.workflow(workflow)
        handle = self.engine.start(definition, *(args or ()), id=id, **(kwargs or {}))
        # engine.start() returns before the start is recorded. Answer once it is, so
        # that `nbconductor start` followed by `nbconductor show ID` finds it: the
        # engine thread runs its inbox in order, so a no-op posted after the start
        # returns once the start's tick has committed.
        try:
            _barrier(self.engine, timeout=5.0)
        except TimeoutError:
            recorded = False  # accepted; the engine thread is busy and records it later
        else:
            recorded = True
        return {"id": handle.id, "workflow": definition.name, "recorded": recorded}

    def _op_queues_list(self) -> list[dict[str, Any]]:
        return [queue_view(info) for info in self.engine.queues.list()]

    def _op_queues_create(self, name: str, **limits: Any) -> dict[str, Any]:
        return queue_view(self.engine.queues.create(name, **limits))

    def _op_queues_update(self, name: str, **limits: Any) -> dict[str, Any]:
        return queue_view(self.engine.queues.update(name, **limits))

    def _op_queues_delete(self, name: str) -> dict[str, Any]:
        self.engine.queues.delete(name)
        return {"name": name, "deleted": True}

    def _op_schedules_list(self) -> list[dict[str, Any]]:
        return [schedule_view(info) for info in self.engine.schedules.list()]

    def _op_schedules_show(self, id: str, n: int = 5) -> dict[str, Any]:
        schedules = self.engine.schedules
        out = schedule_view(schedules.get(id))
        out["describe"] = jsonable(schedules.describe(id, n=n))
        return out

    def _op_schedules_create(self, id: str, workflow: str, **options: Any) -> dict[str, Any]:
        return schedule_view(self.engine.schedules.create(id, workflow, **options))

    def _op_schedules_update(self, id: str, **changes: Any) -> dict[str, Any]:
        return schedule_view(self.engine.schedules.update(id, **changes))

    def _op_schedules_delete(self, id: str) -> dict[str, Any]:
        self.engine.schedules.delete(id)
        return {"id": id, "deleted": True}

    def _op_schedules_pause(self, id: str, note: str | None = None) -> dict[str, Any]:
        return schedule_view(self.engine.schedules.pause(id, note))

    def _op_schedules_resume(self, id: str) -> dict[str, Any]:
        return schedule_view(self.engine.schedules.resume(id))

    def _op_schedules_trigger(self, id: str) -> dict[str, Any]:
        handle = self.engine.schedules.trigger_now(id)
        return {"id": id, "started": handle.id if handle is not None else None}

    def _op_sql(self, query: str) -> dict[str, Any]:
        return sql_result(self.engine.store, query)

    def _op_prune(
        self, closed_before: datetime, dry_run: bool = False, limit: int | None = None
    ) -> dict[str, Any]:
        return prune_view(self.engine.prune(closed_before, dry_run=dry_run, limit=limit))

    def _op_export(self, directory: str, format: str = "parquet") -> dict[str, Any]:
        return {"directory": directory, "tables": export_parquet(self.engine.store, directory)}


def _barrier(engine: Engine, timeout: float) -> None:
    """Return once the engine thread has run everything posted before and committed."""
    try:
        engine.ping(timeout=timeout)
    except TimeoutError:
        raise TimeoutError(
            f"the engine thread did not answer within {timeout:g} s; it is busy, or stuck "
            "in workflow code that blocks (see `nbconductor status`)"
        ) from None
