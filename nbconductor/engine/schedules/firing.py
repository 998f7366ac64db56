"""Schedules as the engine thread fires them: armed as timers, fired idempotently.

A schedule's next fire is an entry on the ledger's timer heap; when it is due,
:func:`due_fires` says which nominal times to handle (catch-up policy) and
:func:`overlap_decision` what to do with each (overlap policy). A fire starts an
execution whose id is derived from the schedule id and the nominal time, and the
schedule's new state is written in the same transaction as that start: a crash right
after firing can never start a duplicate.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from nbconductor.engine.activation import Activations
from nbconductor.engine.definition import Registry, WorkflowDefinition
from nbconductor.engine.ledger import Ledger
from nbconductor.engine.payload import Payloads
from nbconductor.engine.roster import Roster
from nbconductor.engine.schedules.policy import (
    Decision,
    ScheduleSpec,
    due_fires,
    fire_id,
    jitter_offset,
    next_fire,
    overlap_decision,
    release_buffered,
)
from nbconductor.engine.steering import Steering
from nbconductor.errors import ScheduleError
from nbconductor.storage import codec
from nbconductor.storage.records import ScheduleRecord
from nbconductor.storage.store import Store

ALREADY_EXISTS = (
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


class Firing:
    """The engine-thread state of every schedule, and what firing them does."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        roster: Roster,
        store: Store,
        registry: Registry,
        activations: Activations,
        steering: Steering,
        payloads: Payloads,
    ) -> None:
        self._ledger = ledger
        self._roster = roster
        self._store = store
        self._registry = registry
        self._activations = activations
        self._steering = steering
        self._payloads = payloads
        self._items: dict[str, _Schedule] = {}
        # Snapshots other threads read (engine.schedules.get/list).
        self.infos: dict[str, ScheduleInfo] = {}
        # Told which schedules changed once a tick's batch is committed (the views:
        # pausing a schedule changes no execution, so engine.subscribe does not hear it).
        self.listeners: list[Callable[[set[str]], None]] = []
        self._changed: set[str] = set()
        activations.on_close(self._execution_closed)

    def load(self) -> None:
        """Load the stored schedules and fire what fell due while no engine ran."""
        for record in self._store.schedules():
            item = _Schedule.from_record(record)
            self._items[item.spec.id] = item
            item.open_runs = self._open(item.open_runs)
            self._fire_due(item)  # catch up on what fell due while no engine ran
            self._arm(item)

    def create(self, spec: ScheduleSpec) -> ScheduleInfo:
        if spec.id in self._items:
            raise ScheduleError(ALREADY_EXISTS.format(id=spec.id))
        item = _Schedule(spec, last_nominal=self._ledger.now)
        self._items[spec.id] = item
        self._fire_due(item)
        self._arm(item)
        return self.infos[spec.id]

    def replace(self, id: str, spec: ScheduleSpec, *, resumed: bool = False) -> ScheduleInfo:
        item = self._item(id)
        item.spec = spec
        if resumed or item.last_nominal is None:
            item.last_nominal = self._ledger.now
        self._fire_due(item)
        self._arm(item)
        return self.infos[id]

    def delete(self, id: str) -> None:
        self._item(id)
        del self._items[id]
        self.infos.pop(id, None)
        self._ledger.delete_schedule(id)
        self._note_change(id)

    def trigger(self, id: str) -> str | None:
        item = self._item(id)
        started = self._fire(item, self._ledger.now)
        self._save(item)
        return started

    def _item(self, id: str) -> _Schedule:
        item = self._items.get(id)
        if item is None:
            raise ScheduleError(f"no schedule with id {id!r}")
        return item

    def _arm(self, item: _Schedule) -> None:
        item.generation += 1
        now = self._ledger.now
        after = max(item.last_nominal or now, now) if item.waiting is None else now
        upcoming = None if item.spec.paused else next_fire(item.spec, after)
        if upcoming is not None:
            due = upcoming.timestamp() + jitter_offset(item.spec.id, upcoming, item.spec.jitter)
            self._ledger.push(due, self._due, item.spec.id, item.generation)
        self._save(item, upcoming)

    def _due(self, id: str, generation: int) -> None:
        item = self._items.get(id)
        if item is None or item.generation != generation:
            return  # deleted, or re-armed since this entry was pushed
        self._fire_due(item)
        self._arm(item)

    def _fire_due(self, item: _Schedule) -> None:
        definition = self._registry.find("workflow", item.spec.workflow)
        if definition is None:
            # Keep the fires due: they start (per the catch-up policy) once it is defined.
            item.waiting = f"waiting for the definition of workflow {item.spec.workflow!r}"
            return
        item.waiting = None
        nominals = due_fires(item.spec, item.last_nominal, self._ledger.now)
        for nominal in nominals:
            self._fire(item, nominal)
        if nominals:
            item.last_nominal = nominals[-1]

    def _fire(self, item: _Schedule, nominal: datetime) -> str | None:
        item.open_runs = self._open(item.open_runs)
        decision = overlap_decision(item.spec.overlap, len(item.open_runs), len(item.buffered))
        if decision is Decision.SKIP:
            item.skipped += 1
            return None
        if decision is Decision.BUFFER:
            item.buffered.append(nominal)
            return None
        if decision is Decision.CANCEL_THEN_START:
            for run in item.open_runs:
                self._steering.request_cancel(self._roster.get(run))
            item.buffered.append(nominal)  # starts once the cancelled runs have closed
            return None
        if decision is Decision.TERMINATE_THEN_START:
            for run in list(item.open_runs):
                reason = f"schedule {item.spec.id!r} fired again"
                self._steering.terminate(self._roster.get(run), reason)
            item.open_runs.clear()
        return self._start_run(item, nominal)

    def _start_run(self, item: _Schedule, nominal: datetime) -> str | None:
        definition = self._registry.find("workflow", item.spec.workflow)
        if definition is None:
            item.buffered.append(nominal)
            return None
        execution_id = fire_id(item.spec.id, nominal)
        text = self._payloads.encode_input(
            tuple(item.spec.args), dict(item.spec.kwargs), what=f"schedule {item.spec.id!r}"
        )
        if self._activations.start(
            execution_id, definition, text, explicit=True, tags=[f"schedule:{item.spec.id}"]
        ):
            item.open_runs.append(execution_id)
            item.fired += 1
            return execution_id
        return None

    def _execution_closed(self, live, status, result, error) -> None:
        if "@" in live.id:  # a schedule's run: SCHEDULE@NOMINAL-TIME
            self._run_closed(live.id)

    def _run_closed(self, execution_id: str) -> None:
        schedule_id = execution_id.split("@", 1)[0]
        item = self._items.get(schedule_id)
        if item is None or execution_id not in item.open_runs:
            return
        item.open_runs.remove(execution_id)
        # The close is recorded first; the buffered fire starts right after it.
        self._ledger.post(lambda: self._release(item))

    def _release(self, item: _Schedule) -> None:
        if self._items.get(item.spec.id) is not item:
            return
        item.open_runs = self._open(item.open_runs)
        if release_buffered(len(item.open_runs), len(item.buffered)):
            self._start_run(item, item.buffered.pop(0))
        self._save(item)

    def definition_registered(self, definition: WorkflowDefinition) -> None:
        """A workflow was (re)registered: fire what waited for it."""
        for item in self._items.values():
            if item.waiting and item.spec.workflow == definition.name:
                self._fire_due(item)
                for _ in range(release_buffered(len(item.open_runs), len(item.buffered))):
                    self._start_run(item, item.buffered.pop(0))
                self._arm(item)

    def _open(self, runs: list[str]) -> list[str]:
        return [r for r in runs if self._roster.get(r) is not None]

    def _note_change(self, schedule_id: str) -> None:
        if not self._changed and self.listeners:
            self._ledger.after_commit(self._tell_listeners)
        if self.listeners:
            self._changed.add(schedule_id)

    def _tell_listeners(self) -> None:
        changed, self._changed = self._changed, set()
        for listener in list(self.listeners):
            with contextlib.suppress(Exception):  # a broken view must not stop the engine
                listener(changed)

    def _save(self, item: _Schedule, upcoming: datetime | None = None) -> None:
        self._ledger.save_schedule(item.record(self._ledger.now))
        self._note_change(item.spec.id)
        if upcoming is None and not item.spec.paused:
            upcoming = next_fire(
                item.spec, max(item.last_nominal or self._ledger.now, self._ledger.now)
            )
        self.infos[item.spec.id] = ScheduleInfo(
            spec=item.spec,
            next_fire=None if item.spec.paused else upcoming,
            last_nominal=item.last_nominal,
            open_runs=tuple(item.open_runs),
            buffered=tuple(item.buffered),
            fired=item.fired,
            skipped=item.skipped,
            waiting=item.waiting,
        )
