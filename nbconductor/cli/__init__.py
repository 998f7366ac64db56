"""The ``nbconductor`` command: operations outside the notebook.

Each command reaches the engine that holds the history file through its control
socket, or, when no engine holds it, opens the file itself: read-only for reads;
signals, cancels and terminations are written durably and the next engine delivers
them. See docs/cli.md.

- :mod:`~nbconductor.cli.parser`: what the command line accepts (``--help``).
- :mod:`~nbconductor.cli.runner`: :func:`main`, which runs the operation a command names
  and prints its result.
- :mod:`~nbconductor.cli.completion`: the bash and zsh completion scripts.
"""

from __future__ import annotations

from nbconductor.cli.parser import build_parser
from nbconductor.cli.runner import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main, resolve_db
from nbconductor.operations.arguments import UsageError, parse_when

__all__ = (
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "UsageError",
    "build_parser",
    "main",
    "parse_when",
    "resolve_db",
)
