"""The control server: an engine's Unix domain socket, for the CLI and other local tools.

One thread waits for connections (on a selector with a wake-up pipe, so an idle server
costs no CPU at all), and each connection gets a daemon thread that reads request
lines, runs them through :class:`~nbconductor.operations.engine_operations.EngineOperations`
and writes one response line each. What a request may ask is fixed by
:data:`~nbconductor.operations.catalog.OPERATIONS`; errors come back as
``{"type", "message"}``, never as tracebacks.

Example:
    >>> engine = Engine(".nbconductor/orders.duckdb")
    >>> server = ControlServer(engine).start()
    >>> server.socket_path
    PosixPath('/work/.nbconductor/.orders.duckdb.sock')
    >>> server.stop(); engine.stop()
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import stat
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from nbconductor.errors import NbconductorError
from nbconductor.operations.catalog import BadRequest, ControlError
from nbconductor.operations.engine_operations import EngineOperations
from nbconductor.remote.address import (
    MAX_SOCKET_PATH,
    UnsafeSocketPath,
    check_private_dir,
    choose_socket_path,
    peer_uid,
    remove_pointer,
    write_pointer,
)
from nbconductor.remote.protocol import (
    IDLE_TIMEOUT,
    MAX_REQUEST_BYTES,
    RequestTooLarge,
    decode_request,
    encode_error,
    encode_result,
    error_type,
)

if TYPE_CHECKING:
    from nbconductor.engine.engine import Engine

__all__ = ("ControlServer",)

log = logging.getLogger("nbconductor.remote")

REQUEST_TIMEOUT = 10.0
"""Seconds a client has to send the whole of a request once it has begun."""
MAX_CONNECTIONS = 64
_MAX_MESSAGE = 8000
# Errors whose message is meant for the user: passed on as they are. Anything else is
# a bug somewhere, reported as InternalError (type and message, no traceback) and logged.
_EXPECTED = (NbconductorError, ValueError, TypeError, LookupError, TimeoutError)


class _RequestTimeout(Exception):
    pass


class ControlServer:
    """Serves ``engine`` on a Unix domain socket that only its user can reach.

    Args:
        engine: the engine whose operations are served.
        socket_path: where to listen; by default derived from the engine's history file
            (see :mod:`nbconductor.remote.address`). Required for an in-memory engine.

    Raises:
        UnsafeSocketPath: at ``start()``, when no private directory can hold the socket.
        ControlError: at ``start()``, when another live server listens on the path.
    """

    def __init__(self, engine: Engine, socket_path: str | os.PathLike[str] | None = None) -> None:
        self.engine = engine
        self._requested = Path(socket_path) if socket_path is not None else None
        self.socket_path: Path | None = None
        self._beside = True
        self._listener: socket.socket | None = None
        self._inode: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1
        self._connections: set[socket.socket] = set()
        self._idle_since: dict[socket.socket, float] = {}  # waiting for a request to begin
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._operations: EngineOperations | None = None

    # ---------------------------------------------------------------- public API

    @property
    def running(self) -> bool:
        """The server thread is accepting connections."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> ControlServer:
        """Bind the socket (mode 0o600, in a 0o700 directory) and start serving.

        Idempotent while running; a stopped server does not start again (make a new one).
        """
        if self._stopping.is_set():
            raise ControlError("this control server was stopped; create a new ControlServer")
        if self._thread is not None:
            return self
        path = self._choose_path()
        self._listener = self._bind(path)
        self.socket_path = path
        self._operations = EngineOperations(self.engine, socket_path=str(path))
        db = self.engine.store.path
        if db is not None and not self._beside and write_pointer(db, path) is None:
            log.warning(
                "could not write the pointer file beside %s; clients find the socket by "
                "its hashed name in the runtime directory",
                db,
            )
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._thread = threading.Thread(target=self._serve, name="nbconductor-control", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close open connections and remove the socket file (idempotent)."""
        if self._thread is None or self._stopping.is_set():
            return
        self._stopping.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        self._thread.join(timeout)
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # unblock their reads; their threads then close them
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._listener is not None:
            self._listener.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._remove_socket_file()

    def __enter__(self) -> ControlServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "serving" if self.running else "stopped"
        return f"<nbconductor.remote.ControlServer {state} on {self.socket_path}>"

    # ---------------------------------------------------------------- binding

    def _choose_path(self) -> Path:
        if self._requested is not None:
            path = self._requested.expanduser().absolute()
            if len(os.fsencode(path)) > MAX_SOCKET_PATH:
                raise UnsafeSocketPath(
                    f"the socket path {path} is longer than {MAX_SOCKET_PATH} bytes; choose "
                    "a shorter one"
                )
            check_private_dir(path.parent, create=True)
            self._beside = True  # chosen by the caller: no pointer file
            return path
        db = self.engine.store.path
        if db is None:
            raise ControlError(
                "this engine keeps its history in memory; give ControlServer a socket_path"
            )
        path, self._beside = choose_socket_path(db)
        return path

    def _bind(self, path: Path) -> socket.socket:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            info = None
        if info is not None:
            if not stat.S_ISSOCK(info.st_mode):
                raise ControlError(f"{path} exists and is not a socket; move it away")
            if _answers(path):
                raise ControlError(
                    f"another engine already serves {path}; stop it first (two engines "
                    "cannot hold one history file)"
                )
            path.unlink()  # left by an engine that was killed
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(os.fspath(path))
            # The directory is private, so nobody else can reach the socket in the
            # moment before this chmod.
            os.chmod(path, 0o600)
            listener.listen(MAX_CONNECTIONS)
            listener.setblocking(False)
        except BaseException:
            listener.close()
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        bound = os.lstat(path)
        self._inode = (bound.st_dev, bound.st_ino)
        return listener

    def _remove_socket_file(self) -> None:
        path = self.socket_path
        if path is None:
            return
        with contextlib.suppress(OSError):
            info = os.lstat(path)
            if (info.st_dev, info.st_ino) == self._inode:  # still ours, not a successor's
                path.unlink()
        db = self.engine.store.path
        if db is not None and not self._beside:
            remove_pointer(db, path)

    # ---------------------------------------------------------------- serving

    def _serve(self) -> None:
        listener = self._listener
        assert listener is not None
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is listener:
                        self._accept(listener)

    def _accept(self, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            if not self._stopping.is_set():
                log.exception("accepting a control connection failed")
                # E.g. out of file descriptors: the listener stays readable, so back off
                # rather than spin.
                self._stopping.wait(0.5)
            return
        with self._lock:
            if len(self._connections) >= MAX_CONNECTIONS:
                # Idle connections must not lock everyone out: make room by closing the
                # one idle the longest (its client reconnects when it next asks).
                self._evict_idle()
            busy = len(self._connections) >= MAX_CONNECTIONS
            if not busy:
                self._connections.add(conn)
        if busy:
            with contextlib.suppress(OSError), conn:
                conn.settimeout(1.0)
                conn.sendall(encode_error("Busy", "too many open control connections; retry"))
            return
        threading.Thread(
            target=self._handle, args=(conn,), name="nbconductor-control-conn", daemon=True
        ).start()

    def _evict_idle(self) -> None:
        # Under self._lock. A connection is idle while it waits for a request to begin.
        if not self._idle_since:
            return
        oldest = min(self._idle_since, key=self._idle_since.__getitem__)
        del self._idle_since[oldest]
        with contextlib.suppress(OSError):
            oldest.shutdown(socket.SHUT_RDWR)  # its handler sees the close and ends
        self._connections.discard(oldest)

    def _handle(self, conn: socket.socket) -> None:
        try:
            uid = peer_uid(conn)
            if uid is not None and uid != os.getuid():
                conn.settimeout(1.0)
                conn.sendall(encode_error("Forbidden", "this engine serves its own user only"))
                return
            buffer = bytearray()
            while not self._stopping.is_set():
                try:
                    line = self._read_request(conn, buffer)
                except RequestTooLarge as exc:
                    conn.sendall(encode_error(error_type(exc), str(exc)))
                    # The rest of the line cannot be told from the next request, so the
                    # connection ends; read what the client still sends for a moment, so
                    # that it reads the answer instead of hitting a broken pipe.
                    _drain(conn)
                    return
                except _RequestTimeout:
                    conn.sendall(
                        encode_error(
                            "RequestTimeout",
                            f"the request did not arrive whole within {REQUEST_TIMEOUT:g} s",
                        )
                    )
                    return
                if line is None:
                    return
                conn.settimeout(REQUEST_TIMEOUT)  # a client that does not read is dropped
                conn.sendall(self._respond(line))
        except OSError as exc:  # the client went away, or stop() shut the connection
            if not self._stopping.is_set():
                log.info("control connection dropped: %s", exc or type(exc).__name__)
        finally:
            with self._lock:
                self._connections.discard(conn)
                self._idle_since.pop(conn, None)
            conn.close()

    def _read_request(self, conn: socket.socket, buffer: bytearray) -> bytes | None:
        """The next request line, or None when the client closed or stayed idle."""
        searched, deadline = 0, None
        while True:
            end = buffer.find(b"\n", searched)
            if end >= 0:
                if end + 1 > MAX_REQUEST_BYTES:
                    raise RequestTooLarge(_too_large())
                line = bytes(buffer[: end + 1])
                del buffer[: end + 1]
                return line
            if len(buffer) >= MAX_REQUEST_BYTES:
                raise RequestTooLarge(_too_large())
            searched = len(buffer)
            now = time.monotonic()
            if buffer and deadline is None:
                deadline = now + REQUEST_TIMEOUT
            wait = IDLE_TIMEOUT if deadline is None else deadline - now
            if wait <= 0:
                raise _RequestTimeout
            conn.settimeout(wait)
            if not buffer:
                with self._lock:
                    self._idle_since[conn] = now
            try:
                chunk = conn.recv(1 << 16)
            except TimeoutError:
                if deadline is None:
                    return None  # idle: close quietly
                raise _RequestTimeout from None
            finally:
                with self._lock:
                    self._idle_since.pop(conn, None)
            if not chunk:
                return None  # closed by the client (half a request is dropped)
            buffer += chunk

    def _respond(self, line: bytes) -> bytes:
        try:
            op, args = decode_request(line)
        except BadRequest as exc:
            return encode_error(error_type(exc), str(exc))
        operations = self._operations
        assert operations is not None
        try:
            return encode_result(operations.dispatch(op, args))
        except _EXPECTED as exc:
            return encode_error(error_type(exc), _message(exc))
        except Exception as exc:
            log.exception("control operation %s failed", op)
            return encode_error("InternalError", f"{type(exc).__name__}: {_message(exc)}")


def _message(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + " ..."


def _drain(conn: socket.socket, seconds: float = 2.0, limit: int = 64 << 20) -> None:
    """Read and drop what the client still sends, for a moment (see the caller)."""
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)  # the answer is complete: the client sees EOF
        deadline, read = time.monotonic() + seconds, 0
        while read < limit:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            conn.settimeout(left)
            chunk = conn.recv(1 << 16)
            if not chunk:
                return
            read += len(chunk)


def _too_large() -> str:
    return f"the request is larger than {MAX_REQUEST_BYTES} bytes; send less at once"


def _answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(os.fspath(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True
