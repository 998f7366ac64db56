"""The hooks the extension sets on ``nbconductor.widgets``, found by the views.

The extension sets ``nbconductor.widgets.log_source``, ``traceback_mapper`` and
``snapshot_publisher`` (package attributes, read at each use). The views cannot import the package, which imports
them; so the package registers itself here as the :data:`holder` when it is imported,
and the views read ``hooks.holder.log_source`` and ``hooks.holder.traceback_mapper``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

__all__ = ("HookHolder", "holder", "no_log", "unchanged")


class HookHolder(Protocol):
    """Where the hooks are set: the package ``nbconductor.widgets``."""

    log_source: Callable[[str], Iterable[str]]
    traceback_mapper: Callable[[str], str]
    #: ``(bundle, display_id, update)``: display or update an output (None: no kernel).
    snapshot_publisher: Callable[[dict[str, Any], str, bool], None] | None


def no_log(execution_id: str) -> list[str]:
    """The lines an execution printed, for its view's log: none until the extension
    sets this hook."""
    return []


def unchanged(text: str) -> str:
    """A traceback as the view shows it: as it is until the extension sets this hook to
    name notebook cells (``Cell In[7], line 4``) instead of compiled file names."""
    return text


class _Defaults:
    log_source = staticmethod(no_log)
    traceback_mapper = staticmethod(unchanged)
    snapshot_publisher = None


#: The package once it is imported; the defaults until then.
holder: HookHolder = _Defaults()
