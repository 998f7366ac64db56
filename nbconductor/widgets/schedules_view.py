"""Schedules: each schedule's trigger, next fires, last runs and policies; a cron preview.

:func:`cron_preview` and :func:`render_schedule` are pure (the static snapshot and the
tests use them); :class:`SchedulesView` is the live widget of ``%conductor schedules``
and :class:`SchedulePreview` the preview shown while writing a new schedule.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from nbconductor.engine.schedules.policy import (
    CATCHUP_POLICIES,
    OVERLAP_POLICIES,
    ScheduleSpec,
    describe,
)
from nbconductor.errors import NbconductorError
from nbconductor.widgets.coalescer import Coalescer, shared
from nbconductor.widgets.execution_view import ExecutionView
from nbconductor.widgets.markup import FONT, MONO, MUTED, badge, esc
from nbconductor.widgets.panel import Panel
from nbconductor.widgets.snapshot_view import SnapshotView

if TYPE_CHECKING:
    from nbconductor.engine.engine import Engine
    from nbconductor.engine.schedules.scheduler import ScheduleInfo

__all__ = (
    "POLL",
    "SchedulePreview",
    "SchedulesView",
    "cron_preview",
    "preview_html",
    "render_schedule",
    "schedules_text",
    "snapshot_html",
)

#: Seconds between redraws while nothing changes (the next fires move on with time);
#: a change to a schedule redraws at once (``engine.schedules.subscribe``).
POLL = 2.0


def cron_preview(
    *,
    cron: str | None = None,
    every: float | str | None = None,
    timezone: str = "UTC",
    overlap: str = "skip",
    catchup: str = "latest",
    workflow: str = "workflow",
    n: int = 5,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The next ``n`` fire times of a trigger in its zone and what its policies do.

    Returns:
        ``describe()``'s dict (``upcoming``, ``explanation``, ...), or ``{"error": ...}``
        saying what is wrong with the trigger.

    Example:
        >>> p = cron_preview(cron="0 9 * * MON-FRI", timezone="Europe/Paris", n=2)
        >>> [f["local"] for f in p["upcoming"]]   # doctest: +SKIP
        ['2026-11-24T09:00:00+01:00', '2026-11-25T09:00:00+01:00']
    """

    try:
        spec = ScheduleSpec.create(
            "preview",
            workflow,
            cron=cron or None,
            every=every or None,
            timezone=timezone or "UTC",
            overlap=overlap,
            catchup=catchup,
        )
        return describe(spec, now or datetime.now(UTC), n=n).to_dict()
    except (NbconductorError, ValueError, TypeError) as exc:
        return {"error": str(exc)}


def _local(text: str) -> str:
    """``2026-11-24 09:00:00 +01:00`` from an ISO local time (sanitize-friendly)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return esc(text)
    offset = value.strftime("%z")
    offset = f"{offset[:3]}:{offset[3:]}" if offset else ""
    return esc(f"{value.strftime('%Y-%m-%d %H:%M:%S')} {offset}".strip())


def preview_html(preview: dict[str, Any]) -> str:
    """A preview's next fires (in the schedule's zone) and its policies in words."""
    if "error" in preview:
        return (
            '<div class="nbc-preview-error" data-testid="nbc-preview-error" '
            f'style="color:var(--jp-error-color1,#d32f2f)">{esc(preview["error"])}</div>'
        )
    fires = "".join(
        f'<li data-testid="nbc-next-fire">{_local(f["local"])}</li>' for f in preview["upcoming"]
    )
    zone = esc(preview.get("timezone", "UTC"))
    return (
        f'<div class="nbc-preview" data-testid="nbc-preview" style="{FONT}">'
        f'<div>Next fires ({zone}):</div><ul style="margin:2px 0 4px 1.2em;padding:0">'
        f"{fires or '<li>none</li>'}</ul>"
        f'<div style="{MUTED}">{esc(preview["explanation"])}</div></div>'
    )


def render_schedule(info: ScheduleInfo, description: dict[str, Any]) -> str:
    """One schedule as HTML: trigger, zone, state, next fires, last runs, policies."""
    spec = info.spec
    if info.paused:
        state = badge("Paused", "cancelled", testid="nbc-schedule-state")
    elif info.waiting:
        state = badge("Waiting", "waiting", testid="nbc-schedule-state", title=info.waiting)
    else:
        state = badge("Active", "completed", testid="nbc-schedule-state")
    trigger = f'cron <code style="{MONO}">{esc(spec.cron)}</code>' if spec.cron else ""
    trigger = trigger or esc(description.get("trigger", ""))
    runs = []
    for run in description.get("last_runs", ()):
        tone = run["status"]
        runs.append(
            f'<a class="nbc-run-link" data-testid="nbc-run-link" data-nbc-action="open" '
            f'data-nbc-value="{esc(run["execution_id"])}" style="cursor:pointer;'
            f'color:var(--jp-content-link-color,#1976d2)">'
            f'<code style="{MONO}">{esc(run["execution_id"])}</code></a> '
            f"{badge(tone.replace('_', ' ').capitalize(), tone, testid='nbc-run-status')}"
        )
    counts = f"fired {info.fired}, skipped {info.skipped}"
    if info.open_runs:
        counts += f", {len(info.open_runs)} open"
    if info.buffered:
        counts += f", {len(info.buffered)} waiting to start"
    note = f' <span style="{MUTED}">{esc(spec.note)}</span>' if spec.note else ""
    return (
        f'<div class="nbc-schedule" data-testid="nbc-schedule" data-schedule-id="{esc(info.id)}" '
        f'style="{FONT}"><div style="display:flex;gap:10px;align-items:baseline;flex-wrap:wrap">'
        f"<strong>{esc(info.id)}</strong><span>→ {esc(spec.workflow)}</span>{state}{note}</div>"
        f'<div style="{MUTED}">{trigger} · zone {esc(spec.timezone)} · overlap '
        f"{esc(spec.overlap)} · catch-up {esc(spec.catchup)} · {esc(counts)}</div>"
        f"{preview_html(description)}"
        f'<div style="margin-top:2px">Last runs: {" · ".join(runs) if runs else "none yet"}'
        "</div></div>"
    )


def schedules_text(infos: list[ScheduleInfo]) -> str:
    """The deterministic ``text/plain``: how many schedules, their ids, how many paused."""
    if not infos:
        return "<Schedules: none>"
    paused = sum(1 for i in infos if i.paused)
    extra = f", {paused} paused" if paused else ""
    return f"<Schedules: {len(infos)} ({', '.join(i.id for i in infos)}){extra}>"


def snapshot_html(engine: Engine) -> str:
    """Every schedule, as static HTML."""
    infos = engine.schedules.list()
    if not infos:
        return f'<div style="{FONT};{MUTED}">no schedules</div>'
    cards = "".join(render_schedule(info, engine.schedules.describe(info.id)) for info in infos)
    return f'<div class="nbc-schedules" style="display:grid;gap:10px">{cards}</div>'


# ================================================================== widgets


def _workflow_names(engine: Engine | None) -> list[str]:
    if engine is None:
        return []
    return sorted({d.name for d in engine.registry.all() if d.kind == "workflow"})


class SchedulePreview(w.VBox):
    """Type a cron expression or an interval and see the next fires and the policies;
    with an engine, choose the workflow and its arguments and create the schedule.

    Only the kernel's main thread writes it (it follows its own fields).
    """

    def __init__(
        self,
        cron: str = "0 9 * * MON-FRI",
        every: str = "",
        timezone: str = "UTC",
        overlap: str = "skip",
        catchup: str = "latest",
        *,
        now: datetime | None = None,
        engine: Engine | None = None,
        workflow: str = "",
    ) -> None:
        self._now = now
        self.engine = engine
        names = _workflow_names(engine)
        if engine is not None:
            self.workflow: w.ValueWidget = w.Dropdown(
                options=names, value=workflow if workflow in names else None, description="workflow"
            )
        else:
            self.workflow = w.Text(value=workflow, description="workflow", placeholder="report")
        self.cron = w.Text(value=cron or "", description="cron", placeholder="0 9 * * MON-FRI")
        self.every = w.Text(value=every or "", description="or every", placeholder="15 minutes")
        self.timezone = w.Text(value=timezone, description="zone", placeholder="Europe/Paris")
        self.overlap = w.Dropdown(options=OVERLAP_POLICIES, value=overlap, description="overlap")
        self.catchup = w.Dropdown(options=CATCHUP_POLICIES, value=catchup, description="catch-up")
        self.output = w.HTML()
        fields = (self.workflow, self.cron, self.every, self.timezone, self.overlap, self.catchup)
        for field in fields:
            field.add_class("nbc-preview-field")
            field.observe(lambda _change: self.update(), names="value")
        rows: list[w.Widget] = [
            w.HBox([self.workflow]),
            w.HBox([self.cron, self.every, self.timezone]),
            w.HBox([self.overlap, self.catchup]),
            self.output,
        ]
        self.schedule_id = w.Text(description="id", placeholder="morning-report")
        self.args = w.Text(description="args", placeholder='JSON list, e.g. ["eu"]')
        self.create_button = w.Button(description="Create schedule", button_style="primary")
        self.create_button.add_class("nbc-schedule-create")
        self.created = w.HTML("")
        self.created.add_class("nbc-schedule-created")
        if engine is not None:
            self.create_button.on_click(lambda _b: self.create())
            rows.append(w.HBox([self.schedule_id, self.args, self.create_button]))
            rows.append(self.created)
        super().__init__(rows)
        self.add_class("nbc-schedule-preview")
        self.update()

    def _trigger(self) -> dict[str, Any]:
        # Both fields go through: giving both is an error to show, not a choice to make.
        return {
            "cron": self.cron.value.strip() or None,
            "every": self.every.value.strip() or None,
            "timezone": self.timezone.value.strip() or "UTC",
            "overlap": self.overlap.value,
            "catchup": self.catchup.value,
        }

    def create(self) -> ScheduleInfo | None:
        """Create the schedule the fields describe; says inline what is wrong if not."""
        if self.engine is None:
            return None
        try:
            args = json.loads(self.args.value) if self.args.value.strip() else []
            if not isinstance(args, list):
                raise ValueError(f'args are a JSON list, e.g. ["eu"], not {self.args.value}')
            if not self.workflow.value:
                raise ValueError("choose the workflow the schedule starts")
            info = self.engine.schedules.create(
                self.schedule_id.value.strip(),
                self.workflow.value,
                args=tuple(args),
                **self._trigger(),
            )
        except (NbconductorError, ValueError, TypeError) as exc:
            self.created.value = (
                '<span style="color:var(--jp-error-color1,#d32f2f)">'
                f"{esc(type(exc).__name__)}: {esc(exc)}</span>"
            )
            return None
        self.created.value = f'<span style="{MUTED}">created schedule {esc(info.id)}</span>'
        return info

    def update(self) -> None:
        """Recompute the preview from the fields."""
        self.output.value = preview_html(
            cron_preview(
                **self._trigger(), workflow=self.workflow.value or "workflow", now=self._now
            )
        )

    def __repr__(self) -> str:
        return "<SchedulePreview>"


class _Card:
    """One schedule's picture and its buttons."""

    def __init__(self, view: SchedulesView, schedule_id: str) -> None:
        self.id = schedule_id
        self.panel = Panel(kind="schedule", on_action=view._on_panel_action)
        self.pause = w.Button(description="Pause", tooltip="stop firing until resumed")
        self.resume = w.Button(description="Resume", tooltip="fire again from now on")
        self.trigger = w.Button(description="Trigger now", tooltip="fire once now")
        self.error = w.HTML("")
        for button, css in (
            (self.pause, "pause"),
            (self.resume, "resume"),
            (self.trigger, "trigger"),
        ):
            button.add_class(f"nbc-schedule-{css}")
        self.error.add_class("nbc-control-error")
        self.pause.on_click(lambda _b: view._act(self, "pause"))
        self.resume.on_click(lambda _b: view._act(self, "resume"))
        self.trigger.on_click(lambda _b: view._act(self, "trigger"))
        self.box = w.VBox([self.panel, w.HBox([self.pause, self.resume, self.trigger]), self.error])
        self.box.add_class("nbc-schedule-card")

    def widgets(self) -> list[w.Widget]:
        return [self.panel, self.pause, self.resume, self.trigger, self.error, self.box]


class SchedulesView(SnapshotView):
    """Every schedule with pause / resume / trigger-now buttons; live.

    Create it with :func:`nbconductor.widgets.schedules_view`. Clicking a run opens its
    execution view below; "Trigger now" opens the run it started.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        coalescer: Coalescer | None = None,
        live: bool = True,
        poll: float = POLL,
    ) -> None:
        self.engine = engine
        self._poll = poll if live else None
        self.refreshes = 0
        self._coalescer = coalescer or shared()
        self._lock = threading.Lock()
        self._cards: dict[str, _Card] = {}
        self._seen: tuple | None = None
        self._runs_changed = True
        self._held = False  # a change waits for the saved snapshot's rate limit
        self._ended = False
        self.cards = w.VBox([])
        self.cards.add_class("nbc-schedules")
        self.empty = w.HTML("")
        self.preview = SchedulePreview(engine=engine)
        self.preview_box = w.Accordion([self.preview], titles=("Preview a new schedule",))
        self.preview_box.selected_index = None
        self.detail = w.VBox([])
        self.detail.add_class("nbc-detail")
        super().__init__([self.empty, self.cards, self.preview_box, self.detail])
        self.add_class("nbc-schedules-view")
        self._unsubscribe = None
        if live:
            runs = engine.subscribe(self._on_engine_change)
            schedules = engine.schedules.subscribe(self._on_schedules_change)
            self._unsubscribe = lambda: (runs(), schedules())
        self.refresh()
        if self._poll is not None:
            self._coalescer.mark(self, self._poll)

    def _on_engine_change(self, changed: set[str]) -> None:
        if any("@" in i for i in changed):  # a schedule's run started or changed
            self._runs_changed = True
            self._coalescer.mark(self)

    def _on_schedules_change(self, _changed: set[str]) -> None:
        self._coalescer.mark(self)  # engine thread: only mark

    def refresh(self) -> float | None:
        """Redraw the schedules that changed; returns the next poll delay."""
        with self._lock:
            if self._ended:
                return None
            # Take the flag before reading, so a change arriving meanwhile marks again.
            runs_changed, self._runs_changed = self._runs_changed, False
            infos = self.engine.schedules.list()
            seen = tuple(infos)
            if seen == self._seen and not runs_changed:
                return self._next_poll(self._save() if self._held else None)
            self._seen = seen
            self.refreshes += 1
            ids = [info.id for info in infos]
            if list(self._cards) != ids:
                for gone in set(self._cards) - set(ids):
                    for widget in self._cards.pop(gone).widgets():
                        widget.close()
                self._cards = {i: self._cards.get(i) or _Card(self, i) for i in ids}
                self.cards.children = tuple(card.box for card in self._cards.values())
            for info in infos:
                card = self._cards[info.id]
                try:
                    description = self.engine.schedules.describe(info.id)
                except NbconductorError:  # deleted meanwhile: the next refresh drops it
                    continue
                if card.pause.disabled != info.paused:
                    card.pause.disabled = info.paused
                if card.resume.disabled != (not info.paused):
                    card.resume.disabled = not info.paused
                html = render_schedule(info, description)  # last: the picture follows
                if card.panel.html != html:
                    card.panel.html = html
            names = _workflow_names(self.engine)  # defined since: offer them to create
            if isinstance(self.preview.workflow, w.Dropdown) and (
                list(self.preview.workflow.options) != names
            ):
                chosen = self.preview.workflow.value
                self.preview.workflow.options = names
                self.preview.workflow.value = chosen if chosen in names else None
            empty = "" if infos else f'<div style="{MUTED}">no schedules</div>'
            if self.empty.value != empty:
                self.empty.value = empty
            return self._next_poll(self._save())

    def _next_poll(self, due: float | None) -> float | None:
        # A change the saved snapshot held back is written when due.
        self._held = due is not None
        polls = [t for t in (self._poll, due) if t]
        return min(polls) if polls else None

    # ------------------------------------------------------- main-thread actions

    def _act(self, card: _Card, action: str) -> None:
        schedules = self.engine.schedules
        try:
            if action == "pause":
                schedules.pause(card.id)
            elif action == "resume":
                schedules.resume(card.id)
            else:
                handle = schedules.trigger_now(card.id)
                if handle is None:
                    card.error.value = (
                        f'<span style="{MUTED}">not started: the overlap policy '
                        f"({esc(schedules.get(card.id).spec.overlap)}) skipped it</span>"
                    )
                    self._coalescer.mark(self, urgent=True)
                    return
                self.open_execution(handle.id)
        except Exception as exc:
            card.error.value = (
                '<span style="color:var(--jp-error-color1,#d32f2f)">'
                f"{esc(type(exc).__name__)}: {esc(exc)}</span>"
            )
            return
        card.error.value = ""
        self._runs_changed = True
        self._coalescer.mark(self, urgent=True)

    def _on_panel_action(self, action: str, value: Any) -> None:
        if action == "open" and isinstance(value, str):
            self.open_execution(value)

    def open_execution(self, execution_id: str) -> ExecutionView:
        """Show a run's execution view below the schedules."""
        for child in self.detail.children:
            child.close()
        view = ExecutionView(self.engine, execution_id, coalescer=self._coalescer)
        self.detail.children = (view,)
        return view

    # ---------------------------------------------------------------- display

    def text(self) -> str:
        """The deterministic ``text/plain``."""
        return schedules_text(self.engine.schedules.list())

    def snapshot_html(self) -> str:
        """The static ``text/html``: every schedule as it stands now."""
        return snapshot_html(self.engine)

    def close(self) -> None:
        """Stop following the engine and close the widgets."""
        if not hasattr(self, "_lock"):  # __init__ raised (ipywidgets' __del__ calls this)
            super().close()
            return
        with self._lock:
            self._ended = True
        self._stop_following()
        for card in self._cards.values():
            for widget in card.widgets():
                widget.close()
        for child in self.detail.children:
            child.close()
        super().close()
