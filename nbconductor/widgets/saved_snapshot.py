"""A view's last state kept in the notebook, for when no kernel serves the view.

A widget output is only a reference to a model in the kernel: reopened without that
kernel, JupyterLab and Notebook 7 say "Error displaying widget: model not found", and
nbconvert draws an empty box, even when the same output also carries ``text/html``
(the widget's MIME type always wins). So a view is displayed as two outputs: first
this static HTML snapshot (a ``display_data`` with a display id), then the widget.
The snapshot is updated in place (``update_display``) as the view changes (not as
its clocks tick), at most every :data:`UPDATE_EVERY` seconds and always on the final
state, so the saved document holds the last state with the time it was taken.

The snapshot carries a few CSS rules (kept by Lab for the notebooks it trusts, by
nbconvert and in ``static/panel.css``) that decide which of the two outputs shows:
while a live view renders next to it, the snapshot steps aside; while none does (no
kernel, or one still loading), the widget's output with its error steps aside.
"""

from __future__ import annotations

import html
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime

from nbconductor.widgets import hooks

__all__ = ("CSS", "UPDATE_EVERY", "SavedSnapshot", "wrap")

#: Seconds between two updates of a saved snapshot while its view keeps changing.
UPDATE_EVERY = 2.0

_CHILD = ".jp-OutputArea-child"
#: Which output shows (Lab, Notebook 7 and nbconvert's lab template share these classes).
CSS = (
    # A live view follows: the snapshot steps aside.
    f"{_CHILD}:has(.nbc-saved-snapshot):has(+ {_CHILD} .nbc-live-view){{display:none}}"
    # No live view follows (no kernel, or still loading): the widget's output does.
    f"{_CHILD}:has(.nbc-saved-snapshot) + {_CHILD}:not(:has(.nbc-live-view)){{display:none}}"
)


# The text of a clock ("running for 5 s", "in 2 h", "3 min ago"): it changes while
# nothing happens, which is no reason to rewrite the notebook.
_CLOCK = re.compile(r'(data-nbc-(?:since|until|ago)="[^"]*"[^>]*>)[^<]*')


def _without_clocks(page: str) -> str:
    return _CLOCK.sub(r"\1", page)


def wrap(page: str, taken: datetime) -> str:
    """The snapshot output's HTML: the view's static page, when it was taken, the CSS."""
    stamp = taken.strftime("%Y-%m-%d %H:%M:%S")
    return (
        f'<div class="nbc-saved-snapshot"><style>{CSS}</style>{page}'
        '<div class="nbc-saved-at" style="opacity:0.7;font-size:smaller;margin-top:2px">'
        f'Saved view as of <time datetime="{html.escape(taken.isoformat())}">{stamp} UTC'
        "</time>; a kernel running this notebook shows it live.</div></div>"
    )


class SavedSnapshot:
    """One view's snapshot output: shown once per display, then kept up to date.

    Publishing goes through the ``snapshot_publisher`` hook that the extension sets
    (``publisher(bundle, display_id, update)``); without it (no IPython kernel) nothing
    is shown and the view's own bundle keeps its ``text/html``.

    Args:
        every: least seconds between two updates that are not final.
    """

    def __init__(self, every: float = UPDATE_EVERY) -> None:
        self.display_id = f"nbc-{uuid.uuid4().hex}"
        self.every = every
        self.updates = 0
        self._lock = threading.Lock()
        self._shown: str | None = None  # the page last published
        self._at = 0.0

    @property
    def shown(self) -> bool:
        """Whether the snapshot was displayed (and so is kept up to date)."""
        return self._shown is not None

    def show(self, page: str, taken: datetime) -> bool:
        """Display the snapshot as a new output; False when nothing can display it."""
        publisher = getattr(hooks.holder, "snapshot_publisher", None)
        if publisher is None:
            return False
        with self._lock:
            publisher({"text/html": wrap(page, taken)}, self.display_id, False)
            self._shown, self._at = page, time.monotonic()
        return True

    def offer(self, page: Callable[[], str], taken: datetime, *, final: bool) -> float | None:
        """Update the displayed snapshot with ``page()`` if it changed and is due.

        Returns:
            Seconds until a change held back by the rate limit may be written (call
            again then), or None when nothing waits.
        """
        publisher = getattr(hooks.holder, "snapshot_publisher", None)
        if publisher is None or self._shown is None:
            return None
        text = page()
        with self._lock:
            if _without_clocks(text) == _without_clocks(self._shown):
                return None  # only clocks moved: the saved state is the same
            wait = self._at + self.every - time.monotonic()
            if wait > 0 and not final:
                return wait
            publisher({"text/html": wrap(text, taken)}, self.display_id, True)
            self._shown, self._at = text, time.monotonic()
            self.updates += 1
        return None
