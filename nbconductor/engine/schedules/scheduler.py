"""Schedules as the engine runs them: stored, armed as timers, fired idempotently.

``engine.schedules`` is the public face (thread-safe). The firing logic runs on the
engine thread: a schedule's next fire is an entry in the engine's timer heap; when it
is due, :func:`due_fires` says which nominal times to handle (catch-up policy) and
:func:`overlap_decision` what to do with each (overlap policy). A fire starts an
execution whose id is derived from the schedule id and the nominal time, and the
schedule's new state is written in the same transaction as that start: a crash right
after firing can never start a duplicate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from nbconductor.engine import payload
from nbconductor.engine.definition import WorkflowDefinition
from nbconductor.engine.schedules.policy import (
    Decision,
    ScheduleSpec,
    describe,
    due_fires,
    fire_id,
    jitter_offset,
    next_fire,
    overlap_decision,
    release_buffered,
)
from nbconductor.errors import ScheduleError
from nbconductor.storage import codec
from nbconductor.storage.records import ExecutionFilter, ScheduleRecord

if TYPE_CHECKING:
    from nbconductor.engine.engine import Engine
    from nbconductor.engine.handle import Handle


_EXISTS = (
    "a schedule with id {id!r} exists already; use schedules.update() to change it "
    "or delete it first"
)


@dataclass(frozen=True)
class ScheduleInfo:
    """A snapshot of one schedule: its spec and where its firing stands."""

    spec: ScheduleSpec
    next_fire: datetime | None
    last_nominal: datetime | None
    open_runs: tuple[str, ...]
    buffered: tuple[datetime, ...]
    fired: int
    skipped: int
    waiting: str | None = None  # e.g. "waiting for the definition of workflow 'x'"

    @property
    def id(self) -> str:
        """The schedule's id."""
        return self.spec.id

    @property
    def paused(self) -> bool:
        """Whether the schedule is paused (it then has no next fire)."""
        return self.spec.paused


@dataclass(eq=False)
class _Schedule:
    """Engine-thread state of one schedule."""

    spec: ScheduleSpec
    last_nominal: datetime | None
    buffered: list[datetime] = field(default_factory=list)
    open_runs: list[str] = field(default_factory=list)
    fired: int = 0
    skipped: int = 0
    generation: int = 0  # timer heap entries of older generations are stale
    waiting: str | None = None

    def record(self, now: datetime) -> ScheduleRecord:
        state = {
            "last_nominal": self.last_nominal.isoformat() if self.last_nominal else None,
            "buffered": [b.isoformat() for b in self.buffered],
            "open_runs": self.open_runs,
            "fired": self.fired,
            "skipped": self.skipped,
        }
        spec = codec.encode(self.spec.to_dict(), what=f"schedule {self.spec.id!r}")
        return ScheduleRecord(self.spec.id, self.spec.workflow, spec, json.dumps(state), now)

    @classmethod
    def from_record(cls, record: ScheduleRecord) -> _Schedule:
        state = json.loads(record.state)
        last = state.get("last_nominal")
        return cls(
            spec=ScheduleSpec.from_dict(codec.decode(record.spec)),
            last_nominal=datetime.fromisoformat(last) if last else None,
            buffered=[datetime.fromisoformat(b) for b in state.get("buffered", [])],
            open_runs=list(state.get("open_runs", [])),
            fired=state.get("fired", 0),
            skipped=state.get("skipped", 0),
        )


class Schedules:
    """``engine.schedules``: cron and interval triggers that start workflows.

    Example:
        >>> engine.schedules.create("daily-report", report, cron="0 9 * * MON-FRI",
        ...                         timezone="Europe/Paris", overlap="skip")
        >>> engine.schedules.describe("daily-report")["upcoming"][:2]
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._items: dict[str, _Schedule] = {}
        self._infos: dict[str, ScheduleInfo] = {}  # snapshots other threads read

    # ---------------------------------------------------------------- public API

    def create(self, id: str, workflow: WorkflowDefinition | str, **options: Any) -> ScheduleInfo:
        """Create a schedule (see ScheduleSpec.create for every option).

        Raises:
            ScheduleError: invalid cron, zone, policy, window, id; or the id exists.
            WorkflowNotRegistered: no workflow of that name is registered.
        """
        name = workflow.name if isinstance(workflow, WorkflowDefinition) else workflow
        known = {d.name for d in self._engine.registry.all() if d.kind == "workflow"}
        spec = ScheduleSpec.create(id, name, known_workflows=known, **options)
        if spec.id in self._infos:  # say so before complaining about its arguments
            raise ScheduleError(_EXISTS.format(id=spec.id))
        self._check_input(spec)
        return self._engine._call(lambda: self._create(spec))

    def update(self, id: str, **changes: Any) -> ScheduleInfo:
        """Change a schedule's options (same names as create); the rest stay."""
        if "workflow" in changes and isinstance(changes["workflow"], WorkflowDefinition):
            changes["workflow"] = changes["workflow"].name
        spec = self.get(id).spec.update(**changes)
        self._check_input(spec)
        return self._engine._call(lambda: self._replace(id, spec))

    def delete(self, id: str) -> None:
        """Remove a schedule; executions it started are left as they are."""
        self.get(id)
        self._engine._call(lambda: self._delete(id))

    def pause(self, id: str, note: str | None = None) -> ScheduleInfo:
        """Stop firing until resumed; fires missed while paused are not caught up."""
        changes: dict[str, Any] = {"paused": True}
        if note is not None:
            changes["note"] = note
        return self.update(id, **changes)

    def resume(self, id: str) -> ScheduleInfo:
        """Fire again from now on."""
        spec = self.get(id).spec.update(paused=False)
        return self._engine._call(lambda: self._replace(id, spec, resumed=True))

    def trigger_now(self, id: str) -> Handle | None:
        """Fire once now (the overlap policy applies); the handle of the run it started."""
        from nbconductor.engine.handle import Handle

        self.get(id)
        started = self._engine._call(lambda: self._trigger(id))
        return Handle(self._engine, started, self.get(id).spec.workflow) if started else None

    def list(self) -> list[ScheduleInfo]:
        """Every schedule, by id."""
        return [self._infos[k] for k in sorted(self._infos)]

    def get(self, id: str) -> ScheduleInfo:
        """One schedule's snapshot.

        Raises:
            ScheduleError: no schedule has that id.
        """
        info = self._infos.get(id)
        if info is None:
            known = ", ".join(sorted(self._infos)) or "none"
            raise ScheduleError(f"no schedule with id {id!r} (schedules: {known})")
        return info

    def describe(self, id: str, n: int = 5) -> dict:
        """The next ``n`` fire times, what the policies will do, and the last runs."""
        info = self.get(id)
        out = describe(info.spec, self._engine.clock.now(), n=n).to_dict()
        if info.paused:
            out["upcoming"] = []  # nothing fires until it is resumed
        recent = self._engine.store.list_executions(ExecutionFilter(search=f"{id}@", limit=n))
        out["last_runs"] = [
            {"execution_id": r.id, "status": r.status.value, "started": r.created_at.isoformat()}
            for r in recent
            if r.id.startswith(f"{id}@")
        ]
        out["open_runs"] = list(info.open_runs)
        out["buffered"] = [b.isoformat() for b in info.buffered]
        out["fired"], out["skipped"] = info.fired, info.skipped
        out["waiting"] = info.waiting
        return out

    def _check_input(self, spec: ScheduleSpec) -> None:
        # Bad arguments fail here, when the schedule is made, not at its first fire.
        definition = self._engine.registry.find("workflow", spec.workflow)
        args, kwargs = tuple(spec.args), dict(spec.kwargs)
        what = f"schedule {spec.id!r}: workflow {spec.workflow}"
        if definition is None:
            payload.encode_input(args, kwargs, what=what)
        else:
            payload.encode_call(definition.signature, args, kwargs, what=what)

    # ------------------------------------------------------------ engine thread

    def _load(self) -> None:
        for record in self._engine.store.schedules():
            item = _Schedule.from_record(record)
            self._items[item.spec.id] = item
            item.open_runs = [r for r in item.open_runs if r in self._engine._live]
            self._fire_due(item)  # catch up on what fell due while no engine ran
            self._arm(item)

    def _create(self, spec: ScheduleSpec) -> ScheduleInfo:
        if spec.id in self._items:
            raise ScheduleError(_EXISTS.format(id=spec.id))
        item = _Schedule(spec, last_nominal=self._engine._now)
        self._items[spec.id] = item
        self._fire_due(item)
        self._arm(item)
        return self._infos[spec.id]

    def _replace(self, id: str, spec: ScheduleSpec, *, resumed: bool = False) -> ScheduleInfo:
        item = self._item(id)
        item.spec = spec
        if resumed or item.last_nominal is None:
            item.last_nominal = self._engine._now
        self._fire_due(item)
        self._arm(item)
        return self._infos[id]

    def _delete(self, id: str) -> None:
        self._item(id)
        del self._items[id]
        self._infos.pop(id, None)
        self._engine._batch.deleted_schedules.append(id)

    def _trigger(self, id: str) -> str | None:
        item = self._item(id)
        started = self._fire(item, self._engine._now)
        self._save(item)
        return started

    def _item(self, id: str) -> _Schedule:
        item = self._items.get(id)
        if item is None:
            raise ScheduleError(f"no schedule with id {id!r}")
        return item

    def _arm(self, item: _Schedule) -> None:
        item.generation += 1
        now = self._engine._now
        after = max(item.last_nominal or now, now) if item.waiting is None else now
        upcoming = None if item.spec.paused else next_fire(item.spec, after)
        if upcoming is not None:
            due = upcoming.timestamp() + jitter_offset(item.spec.id, upcoming, item.spec.jitter)
            self._engine._push(due, "schedule", item.spec.id, item.generation)
        self._save(item, upcoming)

    def _due(self, id: str, generation: int) -> None:
        item = self._items.get(id)
        if item is None or item.generation != generation:
            return  # deleted, or re-armed since this entry was pushed
        self._fire_due(item)
        self._arm(item)

    def _fire_due(self, item: _Schedule) -> None:
        definition = self._engine.registry.find("workflow", item.spec.workflow)
        if definition is None:
            # Keep the fires due: they start (per the catch-up policy) once it is defined.
            item.waiting = f"waiting for the definition of workflow {item.spec.workflow!r}"
            return
        item.waiting = None
        nominals = due_fires(item.spec, item.last_nominal, self._engine._now)
        for nominal in nominals:
            self._fire(item, nominal)
        if nominals:
            item.last_nominal = nominals[-1]

    def _fire(self, item: _Schedule, nominal: datetime) -> str | None:
        engine = self._engine
        item.open_runs = [r for r in item.open_runs if r in engine._live]
        decision = overlap_decision(item.spec.overlap, len(item.open_runs), len(item.buffered))
        if decision is Decision.SKIP:
            item.skipped += 1
            return None
        if decision is Decision.BUFFER:
            item.buffered.append(nominal)
            return None
        if decision is Decision.CANCEL_THEN_START:
            for run in item.open_runs:
                engine._request_cancel(engine._live[run])
            item.buffered.append(nominal)  # starts once the cancelled runs have closed
            return None
        if decision is Decision.TERMINATE_THEN_START:
            for run in list(item.open_runs):
                engine._terminate(engine._live[run], f"schedule {item.spec.id!r} fired again")
            item.open_runs.clear()
        return self._start_run(item, nominal)

    def _start_run(self, item: _Schedule, nominal: datetime) -> str | None:
        engine = self._engine
        definition = engine.registry.find("workflow", item.spec.workflow)
        if definition is None:
            item.buffered.append(nominal)
            return None
        execution_id = fire_id(item.spec.id, nominal)
        text = payload.encode_input(
            tuple(item.spec.args), dict(item.spec.kwargs), what=f"schedule {item.spec.id!r}"
        )
        if engine._start(
            execution_id, definition, text, explicit=True, tags=[f"schedule:{item.spec.id}"]
        ):
            item.open_runs.append(execution_id)
            item.fired += 1
            return execution_id
        return None

    def _on_closed(self, execution_id: str) -> None:
        schedule_id = execution_id.split("@", 1)[0]
        item = self._items.get(schedule_id)
        if item is None or execution_id not in item.open_runs:
            return
        item.open_runs.remove(execution_id)
        # The close is recorded first; the buffered fire starts right after it.
        self._engine._post(lambda: self._release(item))

    def _release(self, item: _Schedule) -> None:
        if self._items.get(item.spec.id) is not item:
            return
        item.open_runs = [r for r in item.open_runs if r in self._engine._live]
        if release_buffered(len(item.open_runs), len(item.buffered)):
            self._start_run(item, item.buffered.pop(0))
        self._save(item)

    def _on_registered(self, definition) -> None:
        for item in self._items.values():
            if item.waiting and item.spec.workflow == definition.name:
                self._fire_due(item)
                for _ in range(release_buffered(len(item.open_runs), len(item.buffered))):
                    self._start_run(item, item.buffered.pop(0))
                self._arm(item)

    def _save(self, item: _Schedule, upcoming: datetime | None = None) -> None:
        self._engine._batch.schedules.append(item.record(self._engine._now))
        if upcoming is None and not item.spec.paused:
            upcoming = next_fire(
                item.spec, max(item.last_nominal or self._engine._now, self._engine._now)
            )
        self._infos[item.spec.id] = ScheduleInfo(
            spec=item.spec,
            next_fire=None if item.spec.paused else upcoming,
            last_nominal=item.last_nominal,
            open_runs=tuple(item.open_runs),
            buffered=tuple(item.buffered),
            fired=item.fired,
            skipped=item.skipped,
            waiting=item.waiting,
        )


__all__ = ("ScheduleInfo", "Schedules")
