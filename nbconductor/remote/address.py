"""Where an engine's control socket lives, and the permission checks around it.

The socket sits beside the history file, ``<db dir>/.<db name>.sock``, when that
directory is ours and private (mode 0o700, as ``.nbconductor/`` is made) and the path
fits in ``sun_path`` (107 bytes on Linux). Otherwise it goes to a private directory of
ours, ``$XDG_RUNTIME_DIR/nbconductor/`` or ``/tmp/nbconductor-<uid>/``, under a name
hashed from the history path, and a small owner-only pointer file beside the history,
``.<db name>.control.json``, tells clients where it is.

Every directory holding a socket is checked before use: owned by us, a real directory
(not a symlink), and not group- or world-writable. A directory we created ourselves is
0o700. Clients check the same things before they connect, so a socket planted by
someone else is never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import struct
from contextlib import suppress
from pathlib import Path

from nbconductor.errors import NbconductorError

__all__ = (
    "MAX_SOCKET_PATH",
    "UnsafeSocketPath",
    "beside_path",
    "candidate_paths",
    "check_private_dir",
    "choose_socket_path",
    "peer_uid",
    "pointer_path",
    "read_pointer",
    "remove_pointer",
    "runtime_dirs",
    "socket_is_trusted",
    "write_pointer",
)

#: Longest usable AF_UNIX path in bytes: sun_path is 108 bytes on Linux, NUL included
#: (macOS allows 104; a longer path fails at bind and is reported there).
MAX_SOCKET_PATH = 107


class UnsafeSocketPath(NbconductorError, PermissionError):
    """A control socket's directory is not private to this user; it will not be used."""


def beside_path(db_path: str | os.PathLike[str]) -> Path:
    """``<db dir>/.<db name>.sock``: the preferred place for the history's socket."""
    db = Path(db_path)
    return db.with_name(f".{db.name}.sock")


def pointer_path(db_path: str | os.PathLike[str]) -> Path:
    """``<db dir>/.<db name>.control.json``: names the socket when it is elsewhere."""
    db = Path(db_path)
    return db.with_name(f".{db.name}.control.json")


def runtime_dirs() -> list[Path]:
    """Private directories for sockets whose beside path cannot be used, best first."""
    dirs = []
    runtime = os.environ.get("XDG_RUNTIME_DIR", "").strip()
    if runtime and os.path.isabs(runtime):
        dirs.append(Path(runtime) / "nbconductor")
    dirs.append(Path("/tmp") / f"nbconductor-{os.getuid()}")
    return dirs


def _hashed_name(db_path: Path) -> str:
    digest = hashlib.sha256(str(db_path).encode("utf-8", "surrogateescape")).hexdigest()
    return f"{digest[:20]}.sock"


def _fits(path: Path) -> bool:
    return len(os.fsencode(path)) <= MAX_SOCKET_PATH


def _is_private_dir(directory: Path) -> bool:
    try:
        info = os.lstat(directory)
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and stat.S_IMODE(info.st_mode) & 0o077 == 0
    )


def check_private_dir(directory: Path, *, create: bool = False) -> Path:
    """Make sure ``directory`` is a private directory of ours; return it.

    Args:
        directory: where a socket will live.
        create: make it (mode 0o700, parents as needed) when it does not exist.

    Raises:
        UnsafeSocketPath: it is a symlink or not a directory, someone else owns it, or
            group or others may write to it. An existing directory of ours that others
            may only read is tightened to 0o700.
    """
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        if not create:
            raise UnsafeSocketPath(f"the socket directory {directory} does not exist") from None
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)  # mkdir's mode passes through the umask
        info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeSocketPath(
            f"{directory} is not a directory (a symlink or a file); remove it so that "
            "nbconductor can create its private socket directory there"
        )
    if info.st_uid != os.getuid():
        raise UnsafeSocketPath(
            f"{directory} belongs to uid {info.st_uid}, not to you (uid {os.getuid()}); "
            "nbconductor will not put its control socket there. Remove it, or set "
            "XDG_RUNTIME_DIR to a private directory of yours."
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o022:
        raise UnsafeSocketPath(
            f"{directory} can be written by group or others (mode {mode:o}); "
            f"nbconductor will not put its control socket there. Run `chmod 700 {directory}` "
            "or remove it."
        )
    if mode & 0o077:
        os.chmod(directory, 0o700)  # ours, readable by others: tighten rather than refuse
    return directory


def choose_socket_path(db_path: str | os.PathLike[str]) -> tuple[Path, bool]:
    """The socket path a server of ``db_path`` should bind, creating its directory.

    Returns:
        ``(path, beside)``: ``beside`` is False when the socket is in a runtime
        directory, in which case the server writes a pointer file.

    Raises:
        UnsafeSocketPath: no private directory could be found or made.
    """
    db = Path(db_path).resolve()
    preferred = beside_path(db)
    if _fits(preferred) and _is_private_dir(db.parent):
        return preferred, True
    problems = []
    for directory in runtime_dirs():
        path = directory / _hashed_name(db)
        if not _fits(path):
            problems.append(f"{path} is longer than {MAX_SOCKET_PATH} bytes")
            continue
        try:
            check_private_dir(directory, create=True)
        except (UnsafeSocketPath, OSError) as exc:
            problems.append(str(exc))
            continue
        return path, False
    raise UnsafeSocketPath(
        f"no private directory for the control socket of {db}: " + "; ".join(problems)
    )


def candidate_paths(db_path: str | os.PathLike[str]) -> list[Path]:
    """Where a client looks for the socket of ``db_path``, in order (existing only)."""
    db = Path(db_path).resolve()
    found: list[Path] = []
    preferred = beside_path(db)
    if preferred.exists():
        found.append(preferred)
    pointed = read_pointer(db)
    if pointed is not None and pointed not in found:
        found.append(pointed)
    # The pointer may be missing (the history's directory was read-only to the
    # engine): try the hashed names too.
    for directory in runtime_dirs():
        path = directory / _hashed_name(db)
        if path not in found and path.exists():
            found.append(path)
    return found


def socket_is_trusted(path: Path) -> bool:
    """The socket is ours and sits in a private directory of ours."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return (
        stat.S_ISSOCK(info.st_mode) and info.st_uid == os.getuid() and _is_private_dir(path.parent)
    )


def write_pointer(db_path: str | os.PathLike[str], socket_path: Path) -> Path | None:
    """Write the pointer file (mode 0o600); None when the directory is not writable."""
    pointer = pointer_path(Path(db_path).resolve())
    text = json.dumps({"socket": str(socket_path), "pid": os.getpid()})
    temporary = pointer.with_name(f"{pointer.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(temporary, 0o600)
        os.replace(temporary, pointer)  # readers never see half a pointer
    except OSError:
        with suppress(OSError):
            temporary.unlink()
        return None
    return pointer


def read_pointer(db_path: str | os.PathLike[str]) -> Path | None:
    """The socket path named by the pointer file, if the file is ours and well formed."""
    pointer = pointer_path(Path(db_path).resolve())
    try:
        info = os.lstat(pointer)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            return None  # planted by someone else: ignore it
        if info.st_size > 4096:
            return None
        data = json.loads(pointer.read_text())
        socket = data["socket"] if isinstance(data, dict) else None
    except (OSError, ValueError, KeyError):
        return None
    if not isinstance(socket, str) or not os.path.isabs(socket):
        return None
    return Path(socket)


def remove_pointer(db_path: str | os.PathLike[str], socket_path: Path) -> None:
    """Remove the pointer file if it still names ``socket_path`` (another engine's
    pointer, written after ours, stays)."""
    if read_pointer(db_path) == socket_path:
        with suppress(OSError):
            pointer_path(Path(db_path).resolve()).unlink()


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a Unix socket (None where the OS
    does not say; Linux does, through SO_PEERCRED)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    size = struct.calcsize("3i")
    try:
        _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option, size))
    except OSError:
        return None
    return uid
