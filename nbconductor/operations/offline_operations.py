"""The operations on a history file no engine holds.

Reads go through a read-only store; signal, cancel and terminate are written durably
through :mod:`nbconductor.engine.offline` (the next engine delivers them); ``start``
and the schedule changes raise :class:`~nbconductor.operations.catalog.NoEngine`.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nbconductor.engine import offline
from nbconductor.engine.queues.spec import QueueSpec
from nbconductor.engine.schedules.policy import next_fire
from nbconductor.engine.schedules.scheduler import ScheduleInfo
from nbconductor.engine.schedules.spec import ScheduleSpec
from nbconductor.errors import ExecutionNotFound, NotAHistoryFile, StoreLocked
from nbconductor.operations.catalog import NoEngine
from nbconductor.operations.interface import Operations
from nbconductor.operations.shapes import (
    event_view,
    execution_view,
    prune_view,
    queue_view,
    schedule_view,
)
from nbconductor.operations.store_query import sql_result, timer_counts
from nbconductor.storage import codec
from nbconductor.storage.duckdb.parquet_export import export_parquet
from nbconductor.storage.records import ExecutionFilter

__all__ = ("OfflineOperations",)

_HOLDER_PID = re.compile(r"process (\d+)")


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
                pending, due = timer_counts(store)
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
        now = datetime.now(UTC)
        with self._store() as store:
            records = store.schedules()
        return [schedule_view(_stored_schedule(r, now)) for r in records]

    def _op_queues_list(self) -> list[dict[str, Any]]:
        with self._store() as store:
            records = store.queues()
        return [queue_view(QueueSpec.from_json(r.name, r.spec)) for r in records]

    def _queue_change(self, **_: Any) -> Any:
        raise self._needs_engine("changing a queue")

    _op_queues_create = _op_queues_update = _op_queues_delete = _queue_change

    def _schedule_change(self, **_: Any) -> Any:
        raise self._needs_engine("this schedules command")

    _op_schedules_show = _op_schedules_create = _op_schedules_update = _schedule_change
    _op_schedules_delete = _op_schedules_pause = _op_schedules_resume = _schedule_change
    _op_schedules_trigger = _schedule_change

    def _op_sql(self, query: str) -> dict[str, Any]:
        with self._store() as store:
            return sql_result(store, query)

    def _op_prune(
        self, closed_before: datetime, dry_run: bool = False, limit: int | None = None
    ) -> dict[str, Any]:
        with self._store(write=not dry_run) as store:
            return prune_view(store.prune(closed_before, dry_run=dry_run, limit=limit))

    def _op_export(self, directory: str, format: str = "parquet") -> dict[str, Any]:
        with self._store() as store:
            return {"directory": directory, "tables": export_parquet(store, directory)}


def _record(store: Any, execution_id: str):
    record = store.get_execution(execution_id)
    if record is None:
        raise ExecutionNotFound(f"no execution with id {execution_id!r} in {store.path}")
    return record


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
