"""The operations of :data:`~nbconductor.remote.protocol.OPERATIONS`, three ways.

- :class:`EngineOperations` carries them out on an :class:`~nbconductor.Engine` in this
  process; the control server answers every request with it.
- :class:`RemoteOperations` sends them to the engine that holds a history file, over
  its control socket.
- :class:`OfflineOperations` works on a history file no engine holds: reads through a
  read-only store; signal, cancel and terminate written durably through
  :mod:`nbconductor.engine.offline` (the next engine delivers them); schedules and
  ``start`` raise :class:`~nbconductor.remote.protocol.NoEngine`.

All three take the same arguments, checked by the same schema, and return the same
plain-JSON results, so the CLI does not care which one it has::

    with open_operations("history.duckdb") as ops:
        ops.call("signal", id="order-17", name="approve", payload=True)
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbconductor._version import __version__
from nbconductor.engine import offline
from nbconductor.engine.schedules.policy import next_fire
from nbconductor.engine.schedules.scheduler import ScheduleInfo
from nbconductor.engine.schedules.spec import ScheduleSpec
from nbconductor.errors import ExecutionNotFound, NotAHistoryFile, StoreError, StoreLocked
from nbconductor.remote.client import Client, connect
from nbconductor.remote.protocol import NoEngine, check_request
from nbconductor.remote.shapes import event_view, execution_view, iso, jsonable, schedule_view
from nbconductor.storage import codec
from nbconductor.storage.duckdb.parquet_export import export_parquet
from nbconductor.storage.records import ExecutionFilter

if TYPE_CHECKING:
    from nbconductor.engine.engine import Engine

__all__ = (
    "EngineOperations",
    "OfflineOperations",
    "Operations",
    "RemoteOperations",
    "open_operations",
)

_HOLDER_PID = re.compile(r"process (\d+)")


class Operations:
    """Runs control operations; see the module docstring. Use as a context manager."""

    #: True when an engine carries the operations out (in this process or over a socket).
    live: bool = False

    def call(self, op: str, **args: Any) -> Any:
        """Check the arguments and run ``op``; returns its plain-JSON result.

        Raises:
            BadRequest: an argument is missing, unknown or invalid.
            NoEngine: ``op`` needs a running engine and there is none.
            NbconductorError: the operation failed (e.g. ExecutionNotFound); over a
                socket, a RemoteError whose ``type`` names the engine's error.
        """
        return self.dispatch(op, check_request(op, args))

    def dispatch(self, op: str, args: dict[str, Any]) -> Any:
        """Run ``op`` with arguments already checked by
        :func:`~nbconductor.remote.protocol.check_request` (the server's entry point)."""
        method = getattr(self, "_op_" + op.replace(".", "_"))
        return method(**args)

    def close(self) -> None:
        """Release the socket or file."""

    def __enter__(self) -> Operations:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --- on an engine in this process ------------------------------------------------------


class EngineOperations(Operations):
    """The operations carried out on ``engine`` (what the control server runs).

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
        now = datetime.now(timezone.utc)
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
            out["due_timers"] = _due_timers(engine.store)
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
        return _sql(self.engine.store, query)

    def _op_export(self, directory: str, format: str = "parquet") -> dict[str, Any]:
        return {"directory": directory, "tables": export_parquet(self.engine.store, directory)}


# --- over the control socket -----------------------------------------------------------


class RemoteOperations(Operations):
    """The operations sent to the engine behind ``client``'s socket."""

    live = True

    def __init__(self, client: Client) -> None:
        self.client = client

    def call(self, op: str, **args: Any) -> Any:
        """Send ``op`` to the engine (arguments checked here first, sent as given)."""
        # Not through dispatch(): the checked form holds datetimes, which are not JSON.
        return self.client.call(op, **args)

    def close(self) -> None:
        """Close the connection."""
        self.client.close()


# --- on a file no engine holds ---------------------------------------------------------


class OfflineOperations(Operations):
    """The operations on ``db_path`` while no engine holds it.

    Each call opens the file and closes it again, so an engine starting in between is
    not kept out for longer than one operation.
    """

    live = False

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.db_path = Path(db_path).expanduser().resolve()

    def _store(self, *, write: bool = False):
        from nbconductor.storage.duckdb.duckdb_store import DuckDBStore

        if not self.db_path.is_file():
            # Never create a history by mistake (a typo in --db).
            raise NotAHistoryFile(f"there is no nbconductor history at {self.db_path}")
        return DuckDBStore(self.db_path, read_only=not write)

    def _needs_engine(self, what: str) -> NoEngine:
        return NoEngine(
            f"{what} needs a running engine, and none holds {self.db_path}; start one (a "
            "kernel with %load_ext nbconductor, or `nbconductor worker NOTEBOOK`)"
        )

    def _op_ping(self) -> dict[str, Any]:
        raise self._needs_engine("ping")

    def _op_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"engine": False, "db": str(self.db_path), "held_by": None}
        try:
            with self._store() as store:
                out["counts"] = {s.value: n for s, n in store.counts_by_status().items()}
                out["open_executions"] = out["counts"].get("running", 0)
                pending, due = _timers(store)
                out["pending_timers"], out["due_timers"] = pending, due
                out["schedules"] = len(store.schedules())
        except StoreLocked as exc:
            # Held, yet nothing answers on a socket: an engine without a control server,
            # or one whose server died.
            match = _HOLDER_PID.search(str(exc))
            out["held_by"] = int(match.group(1)) if match else True
            out["problem"] = str(exc)
        except NotAHistoryFile as exc:
            out["problem"] = str(exc)
        return out

    def _op_list(self, **filters: Any) -> list[dict[str, Any]]:
        with self._store() as store:
            records = store.list_executions(
                ExecutionFilter(
                    status=filters.get("status") or None,
                    workflow=filters.get("workflow"),
                    since=filters.get("since"),
                    until=filters.get("until"),
                    limit=filters.get("limit", 100),
                    offset=filters.get("offset", 0),
                )
            )
        return [execution_view(r) for r in records]

    def _op_show(self, id: str) -> dict[str, Any]:
        with self._store() as store:
            out = execution_view(_record(store, id))
        out["waiting_signals"] = []  # known only to a running engine
        out["progress"] = None
        return out

    def _op_history(self, id: str) -> list[dict[str, Any]]:
        with self._store() as store:
            _record(store, id)
            return [event_view(e) for e in store.load_history(id)]

    def _op_signal(self, id: str, name: str, payload: Any = None) -> dict[str, Any]:
        with self._store(write=True) as store:
            offline.signal(store, id, name, payload)
        return {"id": id, "signal": name, "delivered": False}

    def _op_cancel(self, id: str) -> dict[str, Any]:
        with self._store(write=True) as store:
            offline.cancel(store, id)
        return {"id": id, "cancel_requested": True, "delivered": False}

    def _op_terminate(self, id: str, reason: str | None = None) -> dict[str, Any]:
        with self._store(write=True) as store:
            offline.terminate(store, id, reason)
        return {"id": id, "terminated": True}

    def _op_start(self, **_: Any) -> Any:
        raise self._needs_engine("starting an execution")

    def _op_schedules_list(self) -> list[dict[str, Any]]:
        # Reading stored schedules needs no engine; their next fire is computed here.
        now = datetime.now(timezone.utc)
        with self._store() as store:
            records = store.schedules()
        return [schedule_view(_stored_schedule(r, now)) for r in records]

    def _schedule_change(self, **_: Any) -> Any:
        raise self._needs_engine("this schedules command")

    _op_schedules_show = _op_schedules_create = _op_schedules_update = _schedule_change
    _op_schedules_delete = _op_schedules_pause = _op_schedules_resume = _schedule_change
    _op_schedules_trigger = _schedule_change

    def _op_sql(self, query: str) -> dict[str, Any]:
        with self._store() as store:
            return _sql(store, query)

    def _op_export(self, directory: str, format: str = "parquet") -> dict[str, Any]:
        with self._store() as store:
            return {"directory": directory, "tables": export_parquet(store, directory)}


def open_operations(
    db_path: str | os.PathLike[str], *, timeout: float = 60.0
) -> RemoteOperations | OfflineOperations:
    """The operations on ``db_path``: through its engine if one listens, else offline."""
    client = connect(db_path, timeout=timeout)
    if client is not None:
        return RemoteOperations(client)
    return OfflineOperations(db_path)


# --- helpers ---------------------------------------------------------------------------


def _barrier(engine: Engine, timeout: float) -> None:
    """Return once the engine thread has run everything posted before and committed."""
    try:
        engine.ping(timeout=timeout)
    except TimeoutError:
        raise TimeoutError(
            f"the engine thread did not answer within {timeout:g} s; it is busy, or stuck "
            "in workflow code that blocks (see `nbconductor status`)"
        ) from None


def _record(store: Any, execution_id: str):
    record = store.get_execution(execution_id)
    if record is None:
        raise ExecutionNotFound(f"no execution with id {execution_id!r} in {store.path}")
    return record


def _sql(store: Any, query: str) -> dict[str, Any]:
    run = getattr(store, "sql", None)
    if run is None:
        raise StoreError("this engine's history is in memory; it does not answer SQL")
    columns, rows = run(query)
    return {"columns": list(columns), "rows": [jsonable(list(row)) for row in rows]}


def _timers(store: Any) -> tuple[int | None, int | None]:
    try:
        timers = store.pending_timers()
    except StoreError:
        return None, None
    return timers.pending, timers.due


def _due_timers(store: Any) -> int | None:
    return _timers(store)[1] if hasattr(store, "sql") else None


def _stored_schedule(record: Any, now: datetime) -> ScheduleInfo:
    spec = ScheduleSpec.from_dict(codec.decode(record.spec))
    state = json.loads(record.state)
    last = state.get("last_nominal")
    last_nominal = datetime.fromisoformat(last) if last else None
    upcoming = None if spec.paused else next_fire(spec, max(last_nominal or now, now))
    return ScheduleInfo(
        spec=spec,
        next_fire=upcoming,
        last_nominal=last_nominal,
        open_runs=tuple(state.get("open_runs", ())),
        buffered=tuple(datetime.fromisoformat(b) for b in state.get("buffered", ())),
        fired=state.get("fired", 0),
        skipped=state.get("skipped", 0),
    )
