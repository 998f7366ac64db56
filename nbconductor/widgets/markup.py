"""Small HTML pieces shared by every view: badges, progress bars, times, durations.

The same HTML serves the live widget (written into an anywidget model, to which the ES
module adds behaviour) and the static ``text/html`` snapshot that a saved notebook,
GitHub or nbval shows, so the look is set by inline styles using JupyterLab's CSS
variables (with fallbacks for renderers outside Lab) rather than by a stylesheet a
static renderer would not load.

What varies from run to run is written in the forms ``notebook-sources/sanitize.cfg`` rewrites:
times as ``YYYY-MM-DD HH:MM:SS`` (UTC), durations as ``123 ms`` or ``4.5 s``.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

__all__ = (
    "FONT",
    "MONO",
    "MUTED",
    "TONES",
    "badge",
    "esc",
    "format_duration",
    "format_time",
    "progress_bar",
    "since",
    "time_tag",
    "tone_color",
    "until",
)

FONT = (
    "font-family:var(--jp-ui-font-family,system-ui,sans-serif);"
    "font-size:var(--jp-ui-font-size1,13px);color:var(--jp-ui-font-color1,#222)"
)
MONO = "font-family:var(--jp-code-font-family,monospace);font-size:var(--jp-code-font-size,12px)"
MUTED = "color:var(--jp-ui-font-color2,#666)"
BORDER = "var(--jp-border-color2,#ddd)"

#: Status tones: the colour of a badge or a timeline bar. Strong shades only, so that
#: the inverse font colour on top stays readable in light and dark themes.
TONES: dict[str, str] = {
    "starting": "var(--jp-ui-font-color3,#9e9e9e)",
    "running": "var(--jp-brand-color1,#1976d2)",
    "waiting": "var(--jp-warn-color1,#f57c00)",
    "sleeping": "var(--jp-info-color1,#0097a7)",
    "retrying": "var(--jp-warn-color0,#e65100)",
    "blocked": "var(--jp-error-color0,#b71c1c)",
    "completed": "var(--jp-success-color1,#388e3c)",
    "failed": "var(--jp-error-color1,#d32f2f)",
    "cancelled": "var(--jp-ui-font-color2,#757575)",
    "terminated": "var(--jp-error-color0,#b71c1c)",
    "timed_out": "var(--jp-warn-color0,#e65100)",
    "continued_as_new": "var(--jp-brand-color2,#1e88e5)",
    "pending": "var(--jp-layout-color3,#bdbdbd)",
}


def esc(value: object) -> str:
    """Text escaped for HTML content and attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def tone_color(tone: str) -> str:
    """The CSS colour of a tone (unknown tones are grey)."""
    return TONES.get(tone, TONES["pending"])


def badge(label: str, tone: str, *, testid: str = "nbc-status-badge", title: str = "") -> str:
    """A coloured pill with ``label``; ``data-tone`` lets tests and CSS read the tone."""
    return (
        f'<span class="nbc-badge nbc-tone-{esc(tone)}" data-testid="{esc(testid)}" '
        f'data-tone="{esc(tone)}" title="{esc(title)}" style="display:inline-block;'
        f"padding:1px 8px;border-radius:10px;background:{tone_color(tone)};"
        "color:var(--jp-ui-inverse-font-color1,#fff);font-weight:600;"
        f'white-space:nowrap">{esc(label)}</span>'
    )


def progress_bar(
    fraction: float | None, *, testid: str = "nbc-progress", tone: str = "running", height: int = 8
) -> str:
    """A horizontal bar filled to ``fraction`` (0-1); None draws an empty track."""
    filled = 0.0 if fraction is None else max(0.0, min(1.0, float(fraction)))
    return (
        f'<div class="nbc-progress" data-testid="{esc(testid)}" '
        f'data-fraction="{filled:.3f}" role="progressbar" aria-valuemin="0" '
        f'aria-valuemax="100" aria-valuenow="{round(filled * 100)}" '
        f'style="height:{height}px;border-radius:{height // 2}px;overflow:hidden;'
        f'background:var(--jp-layout-color3,#e0e0e0);min-width:60px">'
        f'<div style="height:100%;width:{filled * 100:.1f}%;background:{tone_color(tone)}">'
        "</div></div>"
    )


def format_time(value: datetime | None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in UTC (the form notebook-sources/sanitize.cfg rewrites)."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def format_duration(seconds: float | None) -> str:
    """``850 ms``, ``4.2 s``, ``12 s``, ``3 min 4 s``, ``2 h 5 min``, ``3 d 4 h``."""
    if seconds is None:
        return ""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{round(seconds)} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def time_tag(value: datetime | None) -> str:
    """A UTC time; the live view rewrites it in the reader's local time."""
    if value is None:
        return ""
    return (
        f'<time data-nbc-time="{_iso(value)}" title="{format_time(value)} UTC">'
        f"{format_time(value)}</time>"
    )


def since(start: datetime, now: datetime) -> str:
    """The time elapsed since ``start``; the live view keeps it ticking in the browser."""
    text = format_duration((now - start).total_seconds())
    return f'<span class="nbc-elapsed" data-nbc-since="{_iso(start)}">{text}</span>'


def until(due: datetime, now: datetime) -> str:
    """A countdown to ``due`` (``in 4.2 s``); the live view keeps it counting down."""
    left = (due - now).total_seconds()
    text = f"in {format_duration(left)}" if left > 0 else "due"
    return f'<span class="nbc-countdown" data-nbc-until="{_iso(due)}">{text}</span>'


def format_ago(seconds: float) -> str:
    """``3 min ago``: one unit, rounded down (mirrored by ``formatAgo`` in panel.js)."""
    seconds = max(0.0, seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def ago(value: datetime, now: datetime) -> str:
    """How long ago ``value`` was (``3 min ago``), the exact UTC time in its tooltip; the
    live view keeps it current in the browser."""
    return (
        f'<time class="nbc-ago" data-nbc-ago="{_iso(value)}" title="{format_time(value)} UTC">'
        f"{format_ago((now - value).total_seconds())}</time>"
    )
