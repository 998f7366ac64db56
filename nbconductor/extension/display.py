"""How executions look in a notebook without the widgets: text and small HTML, and
payloads and tracebacks as a kernel shows them.

Everything shown here is deterministic apart from execution ids and timestamps,
which ``notebook-sources/sanitize.cfg`` rewrites, so nbval can compare it: a handle's
``text/plain`` is ``<Execution WORKFLOW ID STATUS>``. Tables are
:class:`nbconductor.operations.table.Table`.

The handle's formatters are registered with IPython by the extension (the engine
stays Jupyter-free): :func:`register` on load, :func:`unregister` on unload.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from nbconductor.engine import payload
from nbconductor.engine.failure import summary
from nbconductor.engine.handle import Handle
from nbconductor.storage.records import ExecutionRecord

__all__ = (
    "decoded",
    "error_of",
    "handle_html",
    "handle_text",
    "map_traceback",
    "register",
    "unregister",
)


def decoded(text: str | None, *, input: bool = False) -> str:
    """A stored payload as readable text (the raw text when it cannot be decoded)."""
    if text is None:
        return ""
    try:
        if input:
            args, kwargs = payload.decode_input(text)
            parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
            return "(" + ", ".join(parts) + ")"
        return repr(payload.decode_value(text))
    except Exception:  # an opted-in pickle or a newer codec: show what is stored
        return text


def error_of(record: ExecutionRecord) -> dict:
    """The stored error of a failed execution, as a dict (empty when there is none)."""
    if not record.error:
        return {}
    try:
        value = json.loads(record.error)
    except ValueError:
        return {"message": record.error}
    return value if isinstance(value, dict) else {"message": str(value)}


_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')


def map_traceback(text: str, shell: Any = None) -> str:
    """Name cells the way IPython does: ``File "/tmp/ipykernel_1/123.py", line 4`` of
    a cell becomes ``Cell In[7], line 4``.

    The %%workflow / %%task compiler keeps the cell's own line numbers, so only the
    file name needs mapping. Tracebacks recorded by an earlier kernel name files this
    kernel does not know; they are left as they are.
    """
    compiler = getattr(shell, "compile", None)
    format_name = getattr(compiler, "format_code_name", None)
    if format_name is None:
        return text

    def replace(match: re.Match) -> str:
        named = format_name(match["file"])
        if not named:
            return match[0]
        return f"{named[0]} {named[1]}, line {match['line']}"

    return _FRAME.sub(replace, text)


# --- the handle's display ----------------------------------------------------------------


def handle_text(handle: Handle, *, status: bool = True) -> str:
    """``<Execution order 5b1c... Running>``: workflow, id and status, nothing else.

    Without ``status`` (a live view whose saved snapshot says how it stands), only
    ``<Execution order 5b1c...>``: a status taken at display time would contradict the
    snapshot where a renderer shows both (GitHub shows a widget's text).
    """
    if not status:
        return f"<Execution {handle.workflow or '?'} {handle.id}>"
    try:
        status = handle.status.title
    except Exception:  # a display must not raise (stopped engine, closed store)
        status = "unknown"
    return f"<Execution {handle.workflow or '?'} {handle.id} {status}>"


def handle_html(handle: Handle, shell: Any = None) -> str:
    """A one-row table: workflow, id, status, and why it waits or how it failed."""
    try:
        status = handle.status.title
    except Exception:
        status = "unknown"
    rows = [("Workflow", handle.workflow or "?"), ("Execution", handle.id), ("Status", status)]
    condition = None
    error: dict = {}
    try:
        condition = handle.condition
        if status not in ("Running", "unknown"):
            error = error_of(handle.describe())
    except Exception:  # the engine may have stopped since the status was read
        pass
    if condition:
        rows.append(("Condition", condition))
    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    extra = ""
    if error:
        extra = (
            f"<tr><th style='text-align:left'>Error</th><td>{html.escape(summary(error))}</td></tr>"
        )
        trace = error.get("traceback")
        if trace:
            extra += (
                "<tr><td colspan='2'><details><summary>traceback</summary><pre>"
                f"{html.escape(map_traceback(trace, shell))}</pre></details></td></tr>"
            )
    return f'<table class="nbconductor-execution">{body}{extra}</table>'


_registered: dict[str, Any] = globals().get("_registered") or {}

#: The handle whose live view the mimebundle formatter just produced (widget_bridge
#: sets it; IPython runs that formatter first). Its HTML formatter then adds nothing
#: and its text no status: the view's saved snapshot is an output of its own, and a
#: table or a text saying "Running" beside the widget would go stale in the saved
#: notebook.
live_bundle: Handle | None = None


def register(shell: Any) -> None:
    """Show handles as text and HTML in ``shell`` (idempotent)."""
    formatters = shell.display_formatter.formatters
    plain, rich = formatters["text/plain"], formatters["text/html"]
    if "shell" not in _registered:
        # Keep what was there before us, to put it back on unload.
        _registered["plain"] = plain.type_printers.get(Handle)
        _registered["html"] = rich.type_printers.get(Handle)
    _registered["shell"] = shell
    plain.for_type(
        Handle, lambda obj, p, cycle: p.text(handle_text(obj, status=obj is not live_bundle))
    )
    rich.for_type(Handle, lambda obj: _html_unless_live(obj, shell))


def _html_unless_live(handle: Handle, shell: Any) -> str | None:
    global live_bundle
    if handle is live_bundle:
        live_bundle = None  # IPython formats text first, then HTML: this display is done
        return None
    return handle_html(handle, shell)


def unregister(shell: Any) -> None:
    """Remove the handle's formatters (restoring any that were there before)."""
    if _registered.get("shell") is not shell:
        return
    formatters = shell.display_formatter.formatters
    for key, mime in (("plain", "text/plain"), ("html", "text/html")):
        formatter = formatters[mime]
        formatter.pop(Handle, None)
        previous = _registered.get(key)
        if previous is not None:
            formatter.for_type(Handle, previous)
    _registered.clear()
