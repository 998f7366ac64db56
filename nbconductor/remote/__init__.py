"""Reaching a running engine from outside its process: the control socket.

A running engine serves a Unix domain socket beside its history file (see
:mod:`~nbconductor.remote.address`); the ``nbconductor`` command uses it while an
engine holds the file and opens the file directly otherwise. What a request may ask
and what it returns are the operations of :mod:`nbconductor.operations`, the same
ones ``%conductor`` runs in a kernel. Imports point down: ``remote`` uses
``operations``, ``engine`` and ``storage``, never IPython.

Example:
    >>> from nbconductor.remote import ControlServer, open_operations
    >>> server = ControlServer(engine).start()          # in the engine's process
    >>> with open_operations(".nbconductor/orders.duckdb") as ops:   # anywhere
    ...     ops.call("signal", id="order-17", name="approve", payload=True)
"""

from __future__ import annotations

from nbconductor.operations.catalog import (
    OPERATIONS,
    BadRequest,
    ControlError,
    NoEngine,
    UnknownOperation,
)
from nbconductor.operations.engine_operations import EngineOperations
from nbconductor.operations.interface import Operations
from nbconductor.operations.offline_operations import OfflineOperations
from nbconductor.remote.address import UnsafeSocketPath
from nbconductor.remote.client import Client, connect
from nbconductor.remote.protocol import RemoteError, RequestTooLarge
from nbconductor.remote.remote_operations import RemoteOperations, open_operations
from nbconductor.remote.server import ControlServer

__all__ = (
    "OPERATIONS",
    "BadRequest",
    "Client",
    "ControlError",
    "ControlServer",
    "EngineOperations",
    "NoEngine",
    "OfflineOperations",
    "Operations",
    "RemoteError",
    "RemoteOperations",
    "RequestTooLarge",
    "UnknownOperation",
    "UnsafeSocketPath",
    "connect",
    "open_operations",
)
