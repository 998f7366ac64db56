"""The bridge from the extension to the live widgets.

Handles display as the live execution view (its saved snapshot, an HTML output kept
up to date, then the widget with a text/plain summary); ``%conductor list`` and ``schedules`` display the history table and
the schedules view. When a view cannot be built (no engine, a closed history file),
display falls back to the plain text/HTML formatters in :mod:`display`.
"""

from __future__ import annotations

import contextlib
from typing import Any

from nbconductor.engine.handle import Handle
from nbconductor.extension import display, output

_registered: dict[str, Any] = {}


def register(shell: Any) -> None:
    """Show handles as live views in ``shell`` and feed the views' hooks (idempotent)."""
    from nbconductor import widgets

    widgets.log_source = output.execution_log
    widgets.traceback_mapper = lambda text: display.map_traceback(text, shell)
    widgets.snapshot_publisher = _publish_snapshot
    formatter = shell.display_formatter.mimebundle_formatter
    if "shell" not in _registered:
        _registered["previous"] = formatter.type_printers.get(Handle)
    _registered["shell"] = shell
    formatter.for_type(Handle, _handle_bundle)


def unregister(shell: Any) -> None:
    """Stop showing handles as live views in ``shell``."""
    if _registered.get("shell") is not shell:
        return
    formatter = shell.display_formatter.mimebundle_formatter
    formatter.pop(Handle, None)
    if _registered.get("previous") is not None:
        formatter.for_type(Handle, _registered["previous"])
    from nbconductor import widgets

    widgets.snapshot_publisher = None
    _registered.clear()


def _publish_snapshot(bundle: dict, display_id: str, update: bool) -> None:
    """Display (or update in place) a view's saved snapshot: an output of its own,
    since a widget output shows nothing else when its model is gone."""
    from IPython.display import display as show

    # From the refresher's thread too: ipykernel sends iopub messages from any thread,
    # and frontends route an update by its display id, whatever cell asked.
    show(bundle, raw=True, display_id=display_id, update=update)


def _handle_bundle(handle: Handle, include=None, exclude=None):
    from nbconductor import widgets

    display.live_bundle = None
    if not handle.engine.running:
        return None  # the text/HTML formatters describe it from what is stored
    try:
        view = widgets.execution_view(handle.engine, handle.id)
    except Exception:  # a view is a nicety: never let it break display
        return None
    bundle = view._repr_mimebundle_(include=include, exclude=exclude)
    if view.saved.shown:
        display.live_bundle = handle  # its snapshot is shown: no stale HTML beside it
    return bundle


def history(engine: Any, **filters: Any):
    """The live history table (``%conductor list``, ``nbconductor.history()``)."""
    from nbconductor import widgets

    return widgets.history_table(engine, **filters)


def schedules(engine: Any):
    """The live schedules view (``%conductor schedules``)."""
    from nbconductor import widgets

    with contextlib.suppress(AttributeError):
        return widgets.schedules_view(engine)
    return None
