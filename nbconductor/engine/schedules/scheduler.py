"""``engine.schedules``: the public, thread-safe face of schedules.

Every change is handed to the engine thread (see
:mod:`nbconductor.engine.schedules.firing`, where schedules are armed and fired) and
returns once it is committed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nbconductor.engine.definition import Registry, WorkflowDefinition
from nbconductor.engine.payload import Payloads
from nbconductor.engine.schedules.firing import ALREADY_EXISTS, Firing, ScheduleInfo
from nbconductor.engine.schedules.policy import ScheduleSpec, describe
from nbconductor.engine.steering import Call
from nbconductor.errors import ScheduleError
from nbconductor.storage.records import ExecutionFilter
from nbconductor.storage.store import Store

if TYPE_CHECKING:
    from nbconductor.engine.handle import Handle


class Schedules:
    """``engine.schedules``: cron and interval triggers that start workflows.

    Example:
        >>> engine.schedules.create("daily-report", report, cron="0 9 * * MON-FRI",
        ...                         timezone="Europe/Paris", overlap="skip")
        >>> engine.schedules.describe("daily-report")["upcoming"][:2]
    """

    def __init__(
        self,
        firing: Firing,
        *,
        store: Store,
        registry: Registry,
        clock,
        payloads: Payloads,
        call: Call,
        handle: Callable[[str, str], Handle],
        written: Callable[[], None] = lambda: None,
    ) -> None:
        self._firing = firing
        self._written = written  # waits until what the engine released is in the file
        self._infos = firing.infos  # snapshots the engine thread keeps current
        self._store = store
        self._registry = registry
        self._clock = clock
        self._payloads = payloads
        self._call = call
        self._handle = handle

    # ---------------------------------------------------------------- public API

    def create(self, id: str, workflow: WorkflowDefinition | str, **options: Any) -> ScheduleInfo:
        """Create a schedule (see ScheduleSpec.create for every option).

        Raises:
            ScheduleError: invalid cron, zone, policy, window, id; or the id exists.
            WorkflowNotRegistered: no workflow of that name is registered.
        """
        name = workflow.name if isinstance(workflow, WorkflowDefinition) else workflow
        known = {d.name for d in self._registry.all() if d.kind == "workflow"}
        spec = ScheduleSpec.create(id, name, known_workflows=known, **options)
        if spec.id in self._infos:  # say so before complaining about its arguments
            raise ScheduleError(ALREADY_EXISTS.format(id=spec.id))
        self._check_input(spec)
        return self._call(lambda: self._firing.create(spec))

    def update(self, id: str, **changes: Any) -> ScheduleInfo:
        """Change a schedule's options (same names as create); the rest stay."""
        if "workflow" in changes and isinstance(changes["workflow"], WorkflowDefinition):
            changes["workflow"] = changes["workflow"].name
        spec = self.get(id).spec.update(**changes)
        self._check_input(spec)
        return self._call(lambda: self._firing.replace(id, spec))

    def delete(self, id: str) -> None:
        """Remove a schedule; executions it started are left as they are."""
        self.get(id)
        self._call(lambda: self._firing.delete(id))

    def pause(self, id: str, note: str | None = None) -> ScheduleInfo:
        """Stop firing until resumed; fires missed while paused are not caught up."""
        changes: dict[str, Any] = {"paused": True}
        if note is not None:
            changes["note"] = note
        return self.update(id, **changes)

    def resume(self, id: str) -> ScheduleInfo:
        """Fire again from now on."""
        spec = self.get(id).spec.update(paused=False)
        return self._call(lambda: self._firing.replace(id, spec, resumed=True))

    def trigger_now(self, id: str) -> Handle | None:
        """Fire once now (the overlap policy applies); the handle of the run it started."""
        self.get(id)
        started = self._call(lambda: self._firing.trigger(id))
        return self._handle(started, self.get(id).spec.workflow) if started else None

    def subscribe(self, callback: Callable[[set[str]], None]) -> Callable[[], None]:
        """Call ``callback(schedule_ids)`` on the engine thread after a commit that
        created, changed, fired or deleted schedules (``engine.subscribe`` hears only
        executions: pausing a schedule changes none).

        Returns a function that unsubscribes. Callbacks must be quick and not block.
        """
        listeners = self._firing.listeners
        listeners.append(callback)
        return lambda: listeners.remove(callback) if callback in listeners else None

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
        out = describe(info.spec, self._clock.now(), n=n).to_dict()
        if info.paused:
            out["upcoming"] = []  # nothing fires until it is resumed
        self._written()  # a run's closed row follows its result by one commit
        recent = self._store.list_executions(ExecutionFilter(search=f"{id}@", limit=n))
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
        definition = self._registry.find("workflow", spec.workflow)
        args, kwargs = tuple(spec.args), dict(spec.kwargs)
        what = f"schedule {spec.id!r}: workflow {spec.workflow}"
        if definition is None:
            self._payloads.encode_input(args, kwargs, what=what)
        else:
            self._payloads.encode_call(definition.signature, args, kwargs, what=what)


__all__ = ("ScheduleInfo", "Schedules")
