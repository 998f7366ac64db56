"""The operations on executions and schedules: one command surface for ``%conductor``,
the ``nbconductor`` command and the control socket.

Every way in runs the same operations with the same checks and gets the same results::

    %conductor (extension) ─┐
    nbconductor (cli) ──────┼─> operations ──> engine ──> storage
    control socket (remote)─┘

- :mod:`~nbconductor.operations.catalog`: every operation and what it accepts
  (:data:`OPERATIONS`, :func:`check_request`) and the errors that refuse a request.
- :mod:`~nbconductor.operations.interface`: :class:`Operations`, ``call(op, **args)``.
- :mod:`~nbconductor.operations.engine_operations`: on an engine in this process (the
  control server and ``%conductor``).
- :mod:`~nbconductor.operations.offline_operations`: on a history file no engine holds.
- :mod:`~nbconductor.operations.shapes`: results as plain JSON (stable for scripts).
- :mod:`~nbconductor.operations.table`, :mod:`~nbconductor.operations.text`: results
  for people (one table renderer, sentences and detail views).
- :mod:`~nbconductor.operations.arguments`: what command lines hold (the one parser of
  time expressions, statuses, JSON, schedule options).

Over a socket the same operations are :class:`nbconductor.remote.RemoteOperations`.
Imports point down: this package uses ``engine`` and ``storage``, never ``remote``,
``extension`` or IPython.
"""

from __future__ import annotations

from nbconductor.operations.catalog import (
    OPERATIONS,
    BadRequest,
    ControlError,
    NoEngine,
    UnknownOperation,
    check_request,
)
from nbconductor.operations.engine_operations import EngineOperations
from nbconductor.operations.interface import Operations
from nbconductor.operations.offline_operations import OfflineOperations
from nbconductor.operations.table import Table

__all__ = (
    "OPERATIONS",
    "BadRequest",
    "ControlError",
    "EngineOperations",
    "NoEngine",
    "OfflineOperations",
    "Operations",
    "Table",
    "UnknownOperation",
    "check_request",
)
