"""IPython glue: the only package that imports IPython (see docs/architecture.md)."""

from __future__ import annotations


def load_ipython_extension(ipython) -> None:
    """Start nbconductor in this kernel (filled in by the extension issue)."""


def unload_ipython_extension(ipython) -> None:
    """Stop nbconductor in this kernel."""
