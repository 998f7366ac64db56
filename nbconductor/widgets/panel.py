"""The one anywidget model behind every view's picture: HTML in, actions out.

Python renders a view's HTML (the same HTML its static fallback shows) into the
``html`` trait; the ES module (``static/panel.js``) puts it on the page and adds the
behaviour HTML cannot have on its own: clocks that tick, countdowns, local times,
``<details>`` that stay open across updates, the history table's filter bar, and
clicks on elements marked ``data-nbc-action``, which come back as messages
``{"action": ..., "value": ...}`` handled on the kernel's main thread.

Why anywidget rather than one ipywidgets model per row: a timeline or a table grows,
and one model with one string trait costs one comm message per update whatever its
size, while a model per row costs a message per row and a round of widget creation;
anywidget also needs no JupyterLab extension build (it runs in Lab, Notebook 7 and
VS Code from a static ES module shipped in this package).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

__all__ = ("STATIC", "Panel")

STATIC = Path(__file__).parent / "static"


class Panel(anywidget.AnyWidget):
    """A view's picture: ``html`` rendered by Python, behaviour by ``static/panel.js``.

    Attributes:
        kind: ``execution``, ``history``, ``schedule`` (selects the ES module's extras).
        html: the HTML shown.
        query: the history table's applied filters (echoed to the filter bar).
        options: choices for the filter bar (workflow names, statuses).
    """

    _esm = STATIC / "panel.js"
    _css = STATIC / "panel.css"

    kind = traitlets.Unicode("execution").tag(sync=True)
    html = traitlets.Unicode("").tag(sync=True)
    query = traitlets.Dict().tag(sync=True)
    options = traitlets.Dict().tag(sync=True)

    def __init__(self, on_action: Callable[[str, Any], None] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._on_action = on_action
        self.on_msg(self._handle_message)

    def _handle_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        # Runs on the kernel's main thread (a comm message from the browser).
        if not isinstance(content, dict):
            return
        action = content.get("action")
        if action == "ping":
            # The browser asks now and then whether a kernel still serves this view:
            # after a restart nothing answers, and the view says it is disconnected.
            self.send({"pong": content.get("value")})
            return
        if self._on_action is None:
            return
        if isinstance(action, str):
            self._on_action(action, content.get("value"))

    def send_action(self, action: str, value: Any = None) -> None:
        """Do what a click on ``data-nbc-action=action`` does in the browser (tests)."""
        self._handle_message(self, {"action": action, "value": value}, [])

    def __repr__(self) -> str:
        return f"<Panel {self.kind}>"
