"""The operations on a history file from outside the engine's process.

:class:`RemoteOperations` sends them to the engine that holds the file, over its
control socket; :func:`open_operations` picks that when an engine listens, and
:class:`~nbconductor.operations.offline_operations.OfflineOperations` (the file
itself) when none does. Both take the arguments of
:data:`~nbconductor.operations.catalog.OPERATIONS` and return the same plain-JSON
results, so the CLI does not care which one it has::

    with open_operations("history.duckdb") as ops:
        ops.call("signal", id="order-17", name="approve", payload=True)
"""

from __future__ import annotations

import os
from typing import Any

from nbconductor.operations.interface import Operations
from nbconductor.operations.offline_operations import OfflineOperations
from nbconductor.remote.client import Client, connect

__all__ = ("RemoteOperations", "open_operations")


class RemoteOperations(Operations):
    """The operations sent to the engine behind ``client``'s socket."""

    live = True

    def __init__(self, client: Client) -> None:
        self.client = client

    def call(self, op: str, **args: Any) -> Any:
        """Send ``op`` to the engine (arguments checked here first, sent as given)."""
        # Not through dispatch(): the checked form holds datetimes, which are not JSON.
        return self.client.call(op, **args)

    def close(self) -> None:
        """Close the connection."""
        self.client.close()


def open_operations(
    db_path: str | os.PathLike[str], *, timeout: float = 60.0
) -> RemoteOperations | OfflineOperations:
    """The operations on ``db_path``: through its engine if one listens, else offline."""
    client = connect(db_path, timeout=timeout)
    if client is not None:
        return RemoteOperations(client)
    return OfflineOperations(db_path)
