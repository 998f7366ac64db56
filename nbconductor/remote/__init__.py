"""Reaching a running engine from outside its process: the control socket.

A running engine serves a Unix domain socket beside its history file (see
:mod:`~nbconductor.remote.address`); the ``nbconductor`` command uses it while an
engine holds the file and opens the file directly otherwise. Imports point down:
``control`` uses ``engine`` and ``storage``, never IPython.

Example:
    >>> from nbconductor.remote import ControlServer, open_operations
    >>> server = ControlServer(engine).start()          # in the engine's process
    >>> with open_operations(".nbconductor/orders.duckdb") as ops:   # anywhere
    ...     ops.call("signal", id="order-17", name="approve", payload=True)
"""

from __future__ import annotations

from nbconductor.remote.address import UnsafeSocketPath
from nbconductor.remote.client import Client, connect
from nbconductor.remote.operations import (
    EngineOperations,
    OfflineOperations,
    Operations,
    RemoteOperations,
    open_operations,
)
from nbconductor.remote.protocol import (
    OPERATIONS,
    BadRequest,
    ControlError,
    NoEngine,
    RemoteError,
    RequestTooLarge,
    UnknownOperation,
)
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
