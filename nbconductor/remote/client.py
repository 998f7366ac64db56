"""The client side of the control socket: find the engine of a history file, ask it.

Example:
    >>> client = connect(".nbconductor/orders.duckdb")
    >>> if client is None:
    ...     print("no engine holds the file")
    ... else:
    ...     with client:
    ...         client.call("signal", id="order-17", name="approve", payload=True)
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from nbconductor.operations.catalog import ControlError, check_request
from nbconductor.remote.address import candidate_paths, peer_uid, socket_is_trusted
from nbconductor.remote.protocol import (
    IDLE_TIMEOUT,
    MAX_REQUEST_BYTES,
    RequestTooLarge,
    decode_response,
    encode_request,
)

__all__ = ("Client", "connect")

_CONNECT_TIMEOUT = 5.0
_MAX_RESPONSE_BYTES = 1 << 30


class Client:
    """A connection to an engine's control socket; requests go one at a time.

    Args:
        socket_path: the socket.
        timeout: seconds to wait for each response.

    Raises:
        OSError: nothing listens there (ConnectionRefusedError for a socket file left
            by an engine that was killed, FileNotFoundError when it is gone).
        ControlError: the process listening belongs to another user.
    """

    def __init__(self, socket_path: str | os.PathLike[str], *, timeout: float = 60.0) -> None:
        self.socket_path = Path(socket_path)
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = bytearray()
        self._last_used = 0.0
        self._open()

    def _open(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(_CONNECT_TIMEOUT)
            deadline = time.monotonic() + _CONNECT_TIMEOUT
            while True:
                try:
                    sock.connect(os.fspath(self.socket_path))
                    break
                except BlockingIOError:
                    # The server's backlog is full (it accepts more slowly than clients
                    # arrive): a Unix socket says so at once instead of waiting; retry.
                    if time.monotonic() >= deadline:
                        raise TimeoutError(
                            f"the control socket {self.socket_path} accepted no "
                            f"connection within {_CONNECT_TIMEOUT:g} s"
                        ) from None
                    time.sleep(0.01)
            uid = peer_uid(sock)
            if uid is not None and uid != os.getuid():
                raise ControlError(
                    f"the control socket {self.socket_path} is served by uid {uid}, not by "
                    f"you (uid {os.getuid()}); refusing to talk to it"
                )
        except BaseException:
            sock.close()
            raise
        self._sock, self._buffer, self._last_used = sock, bytearray(), time.monotonic()

    def call(self, op: str, **args: Any) -> Any:
        """Send one request and return its result.

        Raises:
            BadRequest: the arguments do not fit the operation (checked before sending).
            RemoteError: the engine refused or failed it; ``type`` names its error.
            ControlError: the connection broke or the engine did not answer in time.
        """
        check_request(op, args)
        request = encode_request(op, args)
        if len(request) > MAX_REQUEST_BYTES:  # the server would refuse it: say so now
            raise RequestTooLarge(
                f"the {op} request is {len(request)} bytes, larger than the "
                f"{MAX_REQUEST_BYTES} bytes a request may have; send less at once"
            )
        if self._sock is None or time.monotonic() - self._last_used > IDLE_TIMEOUT / 2:
            # The server drops idle connections; open a fresh one rather than find out
            # halfway through a request that must not be sent twice.
            self.close()
            try:
                self._open()
            except OSError as exc:
                raise ControlError(
                    f"the engine's control socket {self.socket_path} no longer answers: {exc}"
                ) from exc
        sock = self._sock
        assert sock is not None
        try:
            sock.settimeout(self.timeout)
            sock.sendall(request)
            line = self._read_line(sock)
        except TimeoutError:
            self.close()
            raise ControlError(
                f"the engine did not answer {op} within {self.timeout:g} s; it may be busy "
                "(try again with a larger --timeout)"
            ) from None
        except OSError as exc:
            self.close()
            raise ControlError(f"the connection to the engine broke during {op}: {exc}") from exc
        self._last_used = time.monotonic()
        return decode_response(line)

    def _read_line(self, sock: socket.socket) -> bytes:
        buffer, searched = self._buffer, 0
        while True:
            end = buffer.find(b"\n", searched)
            if end >= 0:
                line = bytes(buffer[: end + 1])
                del buffer[: end + 1]
                return line
            searched = len(buffer)
            if searched > _MAX_RESPONSE_BYTES:
                raise ControlError("the engine's response is larger than 1 GiB; stopped reading")
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise ConnectionResetError("the engine closed the connection without answering")
            buffer += chunk

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<nbconductor.remote.Client {self.socket_path}>"


def connect(db_path: str | os.PathLike[str], *, timeout: float = 60.0) -> Client | None:
    """A client of the engine that holds ``db_path``, or None when no engine listens.

    A socket file that refuses connections (its engine was killed) counts as no
    engine; so does one that is not ours or not in a private directory of ours.
    """
    for path in candidate_paths(db_path):
        if not socket_is_trusted(path):
            continue
        try:
            return Client(path, timeout=timeout)
        except (ConnectionRefusedError, FileNotFoundError, PermissionError, TimeoutError):
            continue
        except ControlError:
            continue
    return None
