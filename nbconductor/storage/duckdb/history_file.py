"""The history file on disk: who may open it, who may read it, why it would not open.

DuckDB locks a file against other processes, but shares one database instance between
the connections of a process, so it would not stop a second writer here: the claims
below do. Files and their directory are private to the user (payloads may be private),
and DuckDB's messages about locks and foreign files become errors that say what to do.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from nbconductor.errors import NotAHistoryFile, StoreError, StoreLocked

__all__ = (
    "claim",
    "disk_full_message",
    "is_disk_full",
    "make_private",
    "make_private_dir",
    "open_error",
    "owner_only_files",
    "read_error",
    "release",
)

_WHAT_TO_DO = (
    "close the other kernel (or stop its engine with `%conductor stop`), "
    "or use another history file by setting NBCONDUCTOR_DB"
)


_open_paths: dict[str, str] = {}  # resolved path -> "write" | "read"
_open_counts: dict[str, int] = {}
_registry_lock = threading.Lock()

_LOCK_HOLDER = re.compile(r"lock is held in (?P<exe>.*?) \(PID (?P<pid>\d+)\)")


_umask_lock = threading.Lock()
_umask_depth = 0
_umask_saved = 0


@contextmanager
def owner_only_files() -> Iterator[None]:
    """Files created inside are owner-only from their first byte.

    DuckDB creates the database file, and the WAL again after every checkpoint, with
    the umask's mode; a chmod afterwards leaves a window in which another user can open
    the file and keep reading it. The umask is process-wide, so while a store connects
    or commits (a few milliseconds) other threads of the process create owner-only
    files too: more private, never less.
    """
    global _umask_depth, _umask_saved
    with _umask_lock:  # held while counting only: stores of other files do not wait
        if _umask_depth == 0:
            _umask_saved = os.umask(0o077)
        _umask_depth += 1
    try:
        yield
    finally:
        with _umask_lock:
            _umask_depth -= 1
            if _umask_depth == 0:
                os.umask(_umask_saved)


def make_private_dir(directory: Path) -> None:
    """Create the directory readable by its owner alone (an existing one is left as it is)."""
    if directory.is_dir():
        return  # an existing directory keeps its permissions
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)  # mkdir's mode is filtered through the umask


def make_private(path: str) -> None:
    """Make the file readable and writable by its owner alone (a missing one is skipped)."""
    with suppress(FileNotFoundError):  # the WAL comes and goes with checkpoints
        os.chmod(path, 0o600)


def open_error(exc: Exception, path: str, read_only: bool) -> StoreError:
    """The error to raise for DuckDB's refusal ``exc`` to open ``path``."""
    text = str(exc)
    if "Could not set lock" in text or "Conflicting lock" in text:
        match = _LOCK_HOLDER.search(text)
        holder = f"process {match['pid']} ({match['exe']})" if match else "another process"
        return StoreLocked(f"{path} is in use by {holder}; {_WHAT_TO_DO}.")
    if "not a valid DuckDB database" in text:
        return NotAHistoryFile(
            f"{path} is not an nbconductor history file (it is not a DuckDB database); "
            "move it away, or use another file by setting NBCONDUCTOR_DB."
        )
    if "different configuration" in text:
        return StoreLocked(
            f"{path} is already open in this process with another mode; close that "
            "store first, or read through it."
        )
    if _is_damage(text):
        return _damaged(path, text)
    mode = "read-only" if read_only else "read-write"
    return StoreError(f"cannot open history file {path} ({mode}): {text}")


def read_error(exc: Exception, path: str | None) -> StoreError:
    """The error to raise when DuckDB fails to read ``path`` while it is open."""
    text = str(exc)
    if _is_damage(text):
        return _damaged(path, text)
    return StoreError(f"cannot read history file {path}: {text}")


_DAMAGE = ("Could not read enough bytes", "Corrupt", "checksum", "corrupt")


def _is_damage(text: str) -> bool:
    return any(mark in text for mark in _DAMAGE)


def _damaged(path: str | None, text: str) -> StoreError:
    return StoreError(
        f"history file {path} is damaged (truncated or corrupt: {text.splitlines()[0]}). "
        "Stop every engine on it, move it away and restore the latest backup; see "
        '"Backup and restore" and "What survives what" in docs/operations.md.'
    )


def claim(path: str, read_only: bool) -> None:
    """Claim ``path`` for a store of this process; a writer excludes every other store.

    Raises:
        StoreLocked: another store of this process holds it in a conflicting mode.
    """
    mode = "read" if read_only else "write"
    with _registry_lock:
        held = _open_paths.get(path)
        if held is not None and (held == "write" or not read_only):
            raise StoreLocked(
                f"{path} is already open in this process (by another DuckDBStore, "
                f"for {'writing' if held == 'write' else 'reading'}); use that store, or "
                f"close it first. To run a second engine, use another history file by "
                "setting NBCONDUCTOR_DB."
            )
        _open_paths[path] = mode
        _open_counts[path] = _open_counts.get(path, 0) + 1


def release(path: str) -> None:
    """Give back one claim of ``path``."""
    with _registry_lock:
        count = _open_counts.get(path, 0) - 1
        if count <= 0:
            _open_paths.pop(path, None)
            _open_counts.pop(path, None)
        else:
            _open_counts[path] = count


def is_disk_full(exc: BaseException) -> bool:
    """Whether a DuckDB error (or one it chained) says the disk is full (ENOSPC)."""
    while exc is not None:
        if "No space left on device" in str(exc) or getattr(exc, "errno", None) == 28:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def disk_full_message(path: str | None) -> str:
    """What to say when a commit to ``path`` failed because its disk is full."""
    return (
        f"ENOSPC: the disk holding {path} is full (No space left on device); the commit "
        "being written was rolled back and everything committed before it is kept. Free "
        "space on that disk, then open a new Engine on the file to carry on."
    )
