"""Read a tutorial's source, a percent-format ``.py`` file, into a notebook without outputs.

Each tutorial in this folder is written as ``NN-name.py`` and committed twice: the
source, and ``notebooks/NN-name.ipynb`` built from it and run by ``refresh.py`` (nbval
compares the saved outputs). The source is the subset of jupytext's percent format that
jupytext itself writes, so a reader with jupytext installed can open it as a
notebook too::

    # %% [markdown]
    # # A title
    #
    # Markdown, each line commented with "# " (or "#" when blank).

    # %%
    import nbconductor as nc

    # %load_ext nbconductor

    # %%
    # %%task double(x: int) -> int
    return 2 * x

    # %% tags=["nbval-ignore-output"]
    timings()

A ``# %%`` line starts a code cell and ``# %% [markdown]`` a markdown cell, either
followed by ``tags=[...]`` (a JSON list: the cell's metadata tags, which readers do
not see, e.g. nbval's ``nbval-ignore-output``); blank
lines at the end of a cell separate it from the next and are not part of it. In a
code cell a commented magic (``# %name``, ``# %%name``, ``# !command``,
``# x = %name``) is the magic itself; a comment that only looks like one is written
with one more ``# `` (``# # %d``).

This reader, rather than jupytext, builds the notebooks: jupytext installs a Jupyter
server extension and a JupyterLab extension into the environment that the browser
tests run JupyterLab in, and the subset used here takes a page to read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import nbformat

__all__ = ("Cell", "SourceError", "notebook", "read_cells")

_MARKER = re.compile(r"^# %%(?P<rest>.*)$")
# What may follow `# %%`: nothing, ` [markdown]`, then optionally the cell's tags.
_CELL = re.compile(r"^(?P<markdown> \[markdown\])?( tags=(?P<tags>\[[^\]]*\]))?$")
# A commented magic, shell command or magic assignment (`x = %magic ...`), escaped once
# or more: jupytext's rules for Python, less the rarely used `?` help and bare `ls`.
_COMMENTED_MAGIC = re.compile(
    r"^\s*(# |#)+(%{1,3}[a-zA-Z]|!\s*[A-Za-z.~$\\/{}]|[a-zA-Z_]\w*\s*=\s*(%{1,3}|!)[a-zA-Z])"
)


class SourceError(ValueError):
    """A line of a tutorial's source that this reader does not accept."""


@dataclass(frozen=True)
class Cell:
    """One cell of a tutorial's source.

    Attributes:
        kind: ``"markdown"`` or ``"code"``.
        source: the cell's text as the notebook holds it (markdown uncommented,
            magics uncommented).
        line: the line number of the cell's ``# %%`` marker in the source file; line
            ``k`` of ``source`` is line ``line + k`` of the file.
        tags: the cell's metadata tags (``tags=[...]`` on its marker line).
    """

    kind: Literal["markdown", "code"]
    source: str
    line: int
    tags: tuple[str, ...] = ()


def read_cells(path: Path) -> list[Cell]:
    """The cells of the source file ``path``, in order.

    Raises:
        SourceError: text before the first marker, an unknown marker, or a markdown
            line that is neither blank nor commented; the message names the file
            and line.
    """
    cells: list[Cell] = []
    kind: Literal["markdown", "code"] | None = None
    start = 0
    lines: list[str] = []
    tags: tuple[str, ...] = ()

    def close() -> None:
        if kind is None:
            return
        while lines and not lines[-1].strip():
            lines.pop()
        cells.append(Cell(kind, "\n".join(lines), start, tags))

    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        where = f"{path.name}:{number}"
        marker = _MARKER.match(line)
        cell = _CELL.match(marker["rest"]) if marker else None
        if cell:
            close()
            kind, start, lines = ("markdown" if cell["markdown"] else "code"), number, []
            tags = _tags(cell["tags"], where) if cell["tags"] else ()
            continue
        if marker and not _COMMENTED_MAGIC.match(line):
            raise SourceError(f"{where}: write `# %%` or `# %% [markdown]`, not {line!r}")
        if kind is None:
            if line.strip():
                raise SourceError(f"{where}: the file must start with a `# %%` marker")
        elif kind == "markdown":
            if line.strip() and line != "#" and not line.startswith("# "):
                raise SourceError(f"{where}: a markdown line starts with '# ': {line!r}")
            lines.append(line[2:])
        else:
            lines.append(_uncomment_magic(line))
    close()
    return cells


def _tags(text: str, where: str) -> tuple[str, ...]:
    try:
        tags = json.loads(text)
    except json.JSONDecodeError:
        tags = None
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise SourceError(f'{where}: tags are a JSON list of strings, e.g. tags=["x"]: {text}')
    return tuple(tags)


def _uncomment_magic(line: str) -> str:
    if not _COMMENTED_MAGIC.match(line):
        return line
    text = line.lstrip()
    indent = line[: len(line) - len(text)]
    return indent + (text[2:] if text.startswith("# ") else text[1:])


def notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook that the source ``path`` describes, without outputs.

    Cell ids are numbered (``cell-00``, ...) so that a rebuild changes no id, and the
    kernel is ``python3``.
    """
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for index, cell in enumerate(read_cells(path)):
        new = (
            nbformat.v4.new_markdown_cell if cell.kind == "markdown" else nbformat.v4.new_code_cell
        )
        made = new(cell.source)
        made["id"] = f"cell-{index:02d}"
        if cell.tags:
            made.metadata["tags"] = list(cell.tags)
        nb.cells.append(made)
    nbformat.validate(nb)
    return nb
