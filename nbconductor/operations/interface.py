"""The interface every way of running the operations offers: ``call`` by name.

:class:`Operations` checks a call against :data:`~nbconductor.operations.catalog.OPERATIONS`
and hands it to the method ``_op_<name>`` of the implementation (dots become
underscores: ``schedules.pause`` is ``_op_schedules_pause``). The implementations are
:class:`~nbconductor.operations.engine_operations.EngineOperations` (an engine in this
process), :class:`~nbconductor.operations.offline_operations.OfflineOperations` (a
history file no engine holds) and :class:`~nbconductor.remote.RemoteOperations` (the
engine behind a control socket).
"""

from __future__ import annotations

from typing import Any

from nbconductor.operations.catalog import check_request

__all__ = ("Operations",)


class Operations:
    """Runs control operations; see the module docstring. Use as a context manager."""

    #: True when an engine carries the operations out (in this process or over a socket).
    live: bool = False

    def call(self, op: str, **args: Any) -> Any:
        """Check the arguments and run ``op``; returns its plain-JSON result.

        Raises:
            BadRequest: an argument is missing, unknown or invalid.
            NoEngine: ``op`` needs a running engine and there is none.
            NbconductorError: the operation failed (e.g. ExecutionNotFound); over a
                socket, a RemoteError whose ``type`` names the engine's error.
        """
        return self.dispatch(op, check_request(op, args))

    def dispatch(self, op: str, args: dict[str, Any]) -> Any:
        """Run ``op`` with arguments already checked by
        :func:`~nbconductor.operations.catalog.check_request` (the server's entry point)."""
        method = getattr(self, "_op_" + op.replace(".", "_"))
        return method(**args)

    def close(self) -> None:
        """Release the socket or file."""

    def __enter__(self) -> Operations:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
