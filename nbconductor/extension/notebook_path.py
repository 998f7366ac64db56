"""Which notebook this kernel runs, and where its history file goes by default.

Where the path comes from (see docs/jupyter-platform.md):

1. ``__vsc_ipynb_file__`` in the user namespace: set by VS Code.
2. ``__session__`` in the user namespace: set by ipykernel from ``JPY_SESSION_NAME``,
   which jupyter_server (JupyterLab, Notebook 7) puts in the kernel's environment.
   It is not updated when the notebook is renamed.
3. ``JPY_SESSION_NAME`` in the environment, for kernels where ipykernel did not
   copy it into the namespace.

Under nbclient, nbconvert and nbval none is set; the kernel's working directory
is then the notebook's folder, and the history goes to ``default.duckdb`` there.

Both functions are pure: they read the namespace, the environment and (to place
a relative session path) the file system, and create nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ("DB_ENV", "default_db_path", "detect_notebook_path")

#: The environment variable that chooses the history file outright.
DB_ENV = "NBCONDUCTOR_DB"

# (where to look, the key, the name reported as the source)
_SOURCES = (
    ("namespace", "__vsc_ipynb_file__", "vscode"),
    ("namespace", "__session__", "jupyter-session"),
    ("environ", "JPY_SESSION_NAME", "JPY_SESSION_NAME"),
)


def detect_notebook_path(
    user_ns: Mapping[str, Any],
    environ: Mapping[str, str] = os.environ,
    cwd: Path | None = None,
) -> tuple[Path | None, str]:
    """Find the running notebook's path.

    Args:
        user_ns: the kernel's user namespace.
        environ: the kernel's environment.
        cwd: the kernel's working directory (default: the process's).

    Returns:
        ``(path, source)``: an absolute path and ``"vscode"``, ``"jupyter-session"``
        or ``"JPY_SESSION_NAME"``; or ``(None, "none")``. Values that do not name an
        ``.ipynb`` file (a console's session, for instance) are skipped.

    Example:
        >>> detect_notebook_path({"__vsc_ipynb_file__": "/w/a.ipynb"}, {})
        (PosixPath('/w/a.ipynb'), 'vscode')
    """
    base = Path.cwd() if cwd is None else cwd
    for where, key, source in _SOURCES:
        value = (user_ns if where == "namespace" else environ).get(key)
        if not isinstance(value, str) or not value.strip().lower().endswith(".ipynb"):
            continue
        return _absolute(Path(value.strip()).expanduser(), base), source
    return None, "none"


def _absolute(path: Path, cwd: Path) -> Path:
    if path.is_absolute():
        return path
    if (cwd / path).exists():
        return cwd / path
    # jupyter_server gives a path relative to the *server's* root when it was not
    # told the file name, while the kernel starts in the notebook's own folder.
    return cwd / path.name


def default_db_path(
    user_ns: Mapping[str, Any],
    environ: Mapping[str, str] = os.environ,
    cwd: Path | None = None,
) -> tuple[Path, str]:
    """Choose the history file: ``NBCONDUCTOR_DB``, next to the notebook, or the cwd.

    Args:
        user_ns: the kernel's user namespace.
        environ: the kernel's environment.
        cwd: the kernel's working directory (default: the process's).

    Returns:
        ``(path, explanation)``; the explanation is one sentence for the user
        saying where the path came from (and how to choose another).

    Example:
        >>> default_db_path({"__vsc_ipynb_file__": "/w/orders.ipynb"}, {})[0]
        PosixPath('/w/.nbconductor/orders.duckdb')
    """
    base = Path.cwd() if cwd is None else cwd
    chosen = environ.get(DB_ENV, "").strip()
    if chosen:
        path = Path(chosen).expanduser()
        return (path if path.is_absolute() else base / path), f"from {DB_ENV}"
    notebook, source = detect_notebook_path(user_ns, environ, base)
    if notebook is not None:
        return (
            notebook.parent / ".nbconductor" / f"{notebook.stem}.duckdb",
            f"next to the notebook {notebook} (its path from {source})",
        )
    path = base / ".nbconductor" / "default.duckdb"
    return path, (
        "the notebook's path could not be detected (no __vsc_ipynb_file__, __session__ "
        f"or JPY_SESSION_NAME, as under nbclient, nbconvert or nbval), so the history "
        f"goes to {path} in the working directory; to choose the file, set {DB_ENV}=PATH "
        "before loading the extension or run `%conductor db PATH`"
    )
