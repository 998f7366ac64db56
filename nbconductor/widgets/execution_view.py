"""The execution view: what a handle displays, live while the execution runs.

Threads (docs/jupyter-platform.md, docs/architecture.md §5):

- the engine thread only marks the view dirty (:meth:`ExecutionView._on_engine_change`);
- the coalescer's thread runs :meth:`ExecutionView.refresh`: it reads the state and
  writes the picture (``panel.html``), the signal rows and the buttons' ``disabled``;
- button clicks run on the kernel's main thread and only hand requests to the engine
  (``engine.signal``/``cancel``/``terminate`` return once committed, in a few ms);
  they write nothing but their own error lines and the terminate confirmation.

A per-view lock makes the constructor's first refresh and the coalescer's refreshes
take turns, so each widget has one writer at a time.
"""

from __future__ import annotations

import html
import json
import threading
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from nbconductor.engine.signal_payload import UNDECLARED, SignalPayload
from nbconductor.widgets.coalescer import Coalescer, shared
from nbconductor.widgets.execution_html import render, snapshot_text
from nbconductor.widgets.execution_snapshot import ExecutionReader, ExecutionSnapshot
from nbconductor.widgets.panel import Panel
from nbconductor.widgets.snapshot_view import SnapshotView

if TYPE_CHECKING:
    from nbconductor.engine.engine import Engine

__all__ = ("POLL_WHILE_TASKS_RUN", "ExecutionView")

#: Seconds between polls while tasks run: heartbeats and printed output reach the
#: engine without a commit, so nothing else would tell the view.
POLL_WHILE_TASKS_RUN = 0.5


def _error_html(text: str) -> str:
    return (
        '<span class="nbc-inline-error" style="color:var(--jp-error-color1,#d32f2f)">'
        f"{html.escape(text)}</span>"
    )


class _SignalRow:
    """One signal's button, what it carries (a form, a JSON field or nothing) and its
    error line."""

    def __init__(self, view: ExecutionView, name: str, carries: SignalPayload) -> None:
        self.name = name
        self.carries = carries
        self.button = w.Button(
            description=name, tooltip=f"send signal {name!r}; it carries {carries.describe()}"
        )
        self.button.add_class("nbc-signal")
        #: Form fields by name (None: the one value of a single-valued signal).
        self.fields: dict[str | None, w.Widget] = {}
        self.payload: w.Text | None = None  # the JSON field of an undeclared payload
        if not carries.declared:
            self.payload = w.Text(
                placeholder='payload as JSON, e.g. {"by": "ann"}, or null for none',
                layout=w.Layout(width="22em"),
            )
            self.payload.add_class("nbc-signal-payload")
        elif carries.fields:
            for field in carries.fields:
                self.fields[field.name] = _field_input(field.kind, field.default, field.name)
        elif carries.expects:
            self.fields[None] = _field_input(carries.kind, carries.default, None)
        self.error = w.HTML("")
        self.error.add_class("nbc-signal-error")
        inputs = [self.payload] if self.payload is not None else list(self.fields.values())
        self.box = w.HBox([self.button, *inputs, self.error])
        self.box.add_class("nbc-signal-row")
        self.button.on_click(lambda _button: view._send_signal(self))

    def read(self) -> tuple[bool, Any]:
        """``(True, payload)``, or ``(False, what is wrong)`` when nothing may be sent."""
        if self.payload is not None:
            text = self.payload.value.strip()
            if not text:
                # An empty field is no decision: None may mean "no" to the workflow (an
                # offer withdrawn), so the user says null if they mean it.
                return False, (
                    'type the payload as JSON (e.g. {"by": "ann"}, true, or null for none); '
                    "nothing was sent"
                )
            try:
                return True, json.loads(text)
            except ValueError as exc:
                return False, f"not valid JSON ({exc}); nothing was sent"
        if not self.carries.expects:
            return True, None
        values: dict[str, Any] = {}
        for key, widget in self.fields.items():
            kind = _kind_of(self.carries, key)
            ok, value = _field_value(kind, widget.value)
            label = key or self.name
            if not ok:
                return False, f"{label}: {value}; nothing was sent"
            if key is None:
                return True, value
            values[key] = value
        return True, values

    def close(self) -> None:
        inputs = [self.payload] if self.payload is not None else list(self.fields.values())
        for widget in (self.button, *inputs, self.error, self.box):
            widget.close()


def _kind_of(carries: SignalPayload, key: str | None) -> str:
    if key is None:
        return carries.kind
    return next(f.kind for f in carries.fields if f.name == key)


def _field_input(kind: str, default: Any, name: str | None) -> w.Widget:
    """An input for one value of ``kind``, prefilled with the declared example."""
    if kind == "bool":
        widget: w.Widget = w.Checkbox(
            value=bool(default),
            description=name or "yes",
            indent=False,
            layout=w.Layout(width="auto"),
        )
    else:
        shown = "" if default is None else (json.dumps(default) if kind == "json" else str(default))
        hint = {"str": "text", "int": "whole number", "float": "number", "json": "JSON"}[kind]
        widget = w.Text(
            value=shown,
            placeholder=f"{name} ({hint})" if name else hint,
            layout=w.Layout(width="12em"),
        )
    widget.add_class("nbc-signal-field")
    if name:
        widget.add_class(f"nbc-signal-field-{name}")
    return widget


def _field_value(kind: str, raw: Any) -> tuple[bool, Any]:
    """A field's typed value, or ``(False, what is expected)``."""
    if kind == "bool":
        return True, bool(raw)
    text = str(raw).strip()
    expected = {"str": "text", "int": "a whole number", "float": "a number", "json": "JSON"}[kind]
    if not text:
        return False, f"expects {expected}, the field is empty"
    try:
        if kind == "int":
            return True, int(text)
        if kind == "float":
            return True, float(text)
        if kind == "json":
            return True, json.loads(text)
    except ValueError:
        return False, f"expects {expected}, not {text!r}"
    return True, str(raw)


class ExecutionView(SnapshotView):
    """A live view of one execution: status, progress, timeline, signals, controls.

    Create it with :func:`nbconductor.widgets.execution_view`. Once the execution has
    closed the view stops following it (no subscription, no refresh): it costs nothing.

    Attributes:
        panel: the picture (an anywidget model fed with HTML).
        cancel_button, terminate_button: ask the engine to cancel or terminate
            (hidden once the execution is closed).
        fork_button: "Re-run from here": fork the execution and open the new one below.
        confirm_button, keep_button: the terminate confirmation.
        message: errors from cancel/terminate, shown under the buttons.
        detail: views of related executions opened from links (children, parent).
        refreshes: how many times the view re-read the execution.
    """

    def __init__(self, engine: Engine, execution_id: str, *, coalescer: Coalescer | None = None):
        handle = engine.get(execution_id)  # ExecutionNotFound for an unknown id
        self.engine = engine
        self.id = execution_id
        self.refreshes = 0
        self._coalescer = coalescer or shared()
        self._reader = ExecutionReader(engine, execution_id, handle.workflow)
        self._lock = threading.Lock()
        self._snapshot: ExecutionSnapshot | None = None
        self._rows: dict[str, _SignalRow] = {}
        self._disabled: bool | None = None
        self._ended = False  # the view was closed: refresh no more
        self._unsubscribe: Any = None

        self.panel = Panel(kind="execution", on_action=self._on_panel_action)
        self.signal_rows = w.VBox([])
        self.signal_rows.add_class("nbc-signals")
        self.cancel_button = self._button("Cancel", "nbc-cancel", "ask the execution to cancel")
        self.terminate_button = self._button(
            "Terminate", "nbc-terminate", "end the execution at once (asks first)", "danger"
        )
        self.confirm_button = self._button(
            "Yes, terminate", "nbc-terminate-confirm", "no more of its code runs", "danger"
        )
        self.keep_button = self._button("Keep running", "nbc-terminate-keep", "do not terminate")
        self._question = w.HTML("Terminate this execution? None of its code runs after this.")
        self.confirm_box = w.HBox(
            [self._question, self.confirm_button, self.keep_button], layout=w.Layout(display="none")
        )
        self.confirm_box.add_class("nbc-terminate-confirmation")
        self.message = w.HTML("")
        self.message.add_class("nbc-control-error")
        self.fork_button = self._button(
            "Re-run from here",
            "nbc-fork",
            "fork: a new execution that reuses this history up to the first task that "
            "failed for good (or all of it) and runs on with the current code",
        )
        self.fork_button.layout.width = "auto"  # its words, not a truncated "Re-run from h…"
        self.fork_button.on_click(lambda _b: self._fork())
        self.stop_buttons = w.HBox([self.cancel_button, self.terminate_button])
        self.stop_buttons.add_class("nbc-stop-buttons")
        self.controls = w.VBox(
            [
                self.signal_rows,
                w.HBox([self.stop_buttons, self.fork_button]),
                self.confirm_box,
                self.message,
            ]
        )
        self.controls.add_class("nbc-controls")
        self.detail = w.VBox([])
        self.detail.add_class("nbc-detail")
        self.cancel_button.on_click(lambda _b: self._cancel())
        self.terminate_button.on_click(lambda _b: self._ask_terminate(True))
        self.keep_button.on_click(lambda _b: self._ask_terminate(False))
        self.confirm_button.on_click(lambda _b: self._terminate())
        super().__init__([self.panel, self.controls, self.detail])
        self.add_class("nbc-execution-view")

        # Subscribe before the first read, so that no commit falls in between.
        self._unsubscribe = engine.subscribe(self._on_engine_change)
        poll = self.refresh()
        if poll is not None:
            self._coalescer.mark(self, poll)

    @staticmethod
    def _button(description: str, css: str, tooltip: str, style: str = "") -> w.Button:
        button = w.Button(description=description, tooltip=tooltip, button_style=style)
        button.add_class(css)
        return button

    # ------------------------------------------------------------------ state

    @property
    def following(self) -> bool:
        """Whether the view still listens to the engine (False once the execution closed)."""
        return self._unsubscribe is not None

    @property
    def snapshot(self) -> ExecutionSnapshot | None:
        """What the view shows now."""
        return self._snapshot

    def _on_engine_change(self, changed: set[str]) -> None:
        # Engine thread: be quick, only mark.
        if self.id in changed:
            self._coalescer.mark(self)

    def refresh(self) -> float | None:
        """Re-read the execution and update the widgets (the coalescer's thread calls it).

        Returns:
            Seconds until the next poll while tasks run, else None.
        """
        with self._lock:
            if self._ended:
                return None
            snapshot = self._reader.read()
            self.refreshes += 1
            page = render(snapshot, live=True)
            if page != self.panel.html:
                self.panel.html = page
            self._update_controls(snapshot)
            # Published last: whoever sees this snapshot sees the widgets that match it.
            self._snapshot = snapshot
            closed = bool(snapshot.closed_status)
            due = self._save(final=closed)  # the last state always reaches the notebook
            if closed:
                self._stop_following()
                return None
            polls = [t for t in (POLL_WHILE_TASKS_RUN if snapshot.running else None, due) if t]
            return min(polls) if polls else None

    def _update_controls(self, s: ExecutionSnapshot) -> None:
        closed = s.closed_status
        names = () if closed else s.signals
        if tuple(self._rows) != names:
            rows = {
                name: self._rows.get(name) or _SignalRow(self, name, self._carries(name))
                for name in names
            }
            self.signal_rows.children = tuple(row.box for row in rows.values())
            for name, row in self._rows.items():
                if name not in rows:
                    row.close()
            self._rows = rows
        for name, row in self._rows.items():
            style = "primary" if name in s.waiting else ""
            if row.button.button_style != style:
                row.button.button_style = style
        if self._disabled != closed:
            self._disabled = closed
            for button in (
                self.cancel_button,
                self.terminate_button,
                self.confirm_button,
                self.keep_button,
            ):
                button.disabled = closed
            # A closed execution cannot be stopped: no red Terminate beside "Completed".
            self.stop_buttons.layout.display = "none" if closed else None
            if closed:
                self.confirm_box.layout.display = "none"

    def _carries(self, signal: str) -> SignalPayload:
        """What the workflow declared ``signal`` to carry (any JSON when undeclared)."""
        definition = self.engine.registry.find("workflow", self._reader.workflow)
        return getattr(definition, "signal_payloads", {}).get(signal, UNDECLARED)

    # ------------------------------------------------------- main-thread actions

    def _send_signal(self, row: _SignalRow) -> None:
        ok, value = row.read()
        if not ok:
            row.error.value = _error_html(value)
            return
        try:
            self.engine.signal(self.id, row.name, value)
        except Exception as exc:  # closed meanwhile, engine stopped: say so inline
            row.error.value = _error_html(f"{type(exc).__name__}: {exc}")
            return
        row.error.value = ""
        self._coalescer.mark(self, urgent=True)

    def _fork(self) -> ExecutionView | None:
        try:
            handle = self.engine.fork(self.id)
        except Exception as exc:  # engine stopped, history unreadable: say so inline
            self.message.value = _error_html(f"{type(exc).__name__}: {exc}")
            return None
        self.message.value = ""
        return self.open_execution(handle.id)

    def _cancel(self) -> None:
        self._control(lambda: self.engine.cancel(self.id))

    def _ask_terminate(self, show: bool) -> None:
        self.confirm_box.layout.display = "flex" if show else "none"

    def _terminate(self) -> None:
        self._ask_terminate(False)
        self._control(lambda: self.engine.terminate(self.id, "terminated from the notebook"))

    def _control(self, request) -> None:
        try:
            request()
        except Exception as exc:
            self.message.value = _error_html(f"{type(exc).__name__}: {exc}")
            return
        self.message.value = ""
        self._coalescer.mark(self, urgent=True)

    def _on_panel_action(self, action: str, value: Any) -> None:
        if action == "open" and isinstance(value, str):
            self.open_execution(value)

    def open_execution(self, execution_id: str) -> ExecutionView | None:
        """Show another execution's view under this one (a child, the parent, the next
        run); opening the one already shown closes it."""
        current = self.detail.children[0] if self.detail.children else None
        if current is not None:
            current.close()
        if isinstance(current, ExecutionView) and current.id == execution_id:
            self.detail.children = ()
            return None
        view = ExecutionView(self.engine, execution_id, coalescer=self._coalescer)
        self.detail.children = (view,)
        return view

    # ---------------------------------------------------------------- display

    def text(self) -> str:
        """The deterministic ``text/plain``: workflow and status."""
        snapshot = getattr(self, "_snapshot", None)
        if snapshot is None:
            reader = getattr(self, "_reader", None)
            return f"<Execution {reader.workflow if reader else '?'}>"
        return snapshot_text(snapshot)

    def snapshot_html(self) -> str:
        """The static ``text/html`` fallback of what the view shows now."""
        return render(self._snapshot, live=False) if self._snapshot else ""

    def close(self) -> None:
        """Stop following the execution and close the widgets."""
        if not hasattr(self, "_lock"):  # __init__ raised (ipywidgets' __del__ calls this)
            super().close()
            return
        with self._lock:
            self._ended = True
            self._stop_following()
        for child in self.detail.children:
            child.close()
        for row in self._rows.values():
            row.close()
        for widget in (
            self.panel,
            self.cancel_button,
            self.terminate_button,
            self.confirm_button,
            self.keep_button,
            self.fork_button,
            self.stop_buttons,
            self._question,
            self.confirm_box,
            self.message,
            self.signal_rows,
            self.controls,
            self.detail,
        ):
            widget.close()
        super().close()
