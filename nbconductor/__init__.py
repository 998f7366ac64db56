"""nbconductor: a durable workflow engine that lives inside a Jupyter kernel."""

from __future__ import annotations

from nbconductor._version import __version__

__all__ = ("__version__",)


def load_ipython_extension(ipython):  # pragma: no cover - thin hook, tested via kernel tests
    """Called by ``%load_ext nbconductor``."""
    from nbconductor.extension import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython):  # pragma: no cover
    """Called by ``%unload_ext nbconductor``."""
    from nbconductor.extension import unload_ipython_extension as _unload

    _unload(ipython)
