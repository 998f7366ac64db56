"""Rebuild tutorial notebooks from their sources: run each one and save it with outputs.

Each tutorial's source is ``NN-name.py`` in this folder (jupytext's percent format,
read by ``percent_format.py``). This script builds the notebook from it, runs it with
nbclient in ``notebooks/`` (as nbval does) and saves ``notebooks/NN-name.ipynb`` with
its outputs, so that ``pytest --nbval notebooks/`` has outputs to compare against::

    .venv/bin/python notebook-sources/refresh.py            # all of them
    .venv/bin/python notebook-sources/refresh.py 03 06      # some (number or name)

The sources and this tooling live here rather than in ``notebooks/``, so that the
folder a reader opens in JupyterLab holds the tutorials and nothing else.

Edit the ``.py`` files, never the ``.ipynb`` files: a refresh overwrites them, and
tests/test_notebooks.py fails while a notebook and its source disagree.

Each notebook's first code cell points ``NBCONDUCTOR_DB`` at a new temporary folder
before ``%load_ext nbconductor``, so it starts from an empty history however often it
runs (nbval runs it again in CI, and nbclient and nbval cannot tell the extension the
notebook's name, so its default would be one ``.nbconductor/default.duckdb`` shared by
every notebook here). Its last cell unloads the extension and deletes that folder.
The only varying values left in the outputs (execution ids, timestamps, durations,
the temporary path, timer due times) are rewritten by ``sanitize.cfg`` before nbval
compares them; a cell whose output is measured durations carries the
``nbval-ignore-output`` tag (``# %% tags=["nbval-ignore-output"]`` in the source).

The saved files are reproducible: cell ids are numbered, no execution timestamps are
recorded, and a refresh changes nothing but the values ``sanitize.cfg`` rewrites.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from percent_format import notebook

HERE = Path(__file__).resolve().parent
NOTEBOOKS = HERE.parent / "notebooks"


def sources() -> list[Path]:
    """The tutorials' sources, in order."""
    return sorted(HERE.glob("[0-9][0-9]-*.py"))


def refresh(source: Path) -> float:
    """Build, run and save the notebook of ``source``; returns the seconds it ran."""
    stem = source.stem
    # The notebooks keep their history in a temporary folder; a history left here by a
    # reader who ran one with the default file must not leak into the run either.
    for leftover in (NOTEBOOKS / ".nbconductor").glob(f"{stem}.duckdb*"):
        leftover.unlink()
    nb = notebook(source)
    started = time.monotonic()
    NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        record_timing=False,  # no per-cell timestamps in the saved file
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    elapsed = time.monotonic() - started
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("name") == "stderr":
                print(f"  warning: {stem} {cell['id']} wrote to stderr: {output['text']!r}")
    nbformat.write(nb, NOTEBOOKS / f"{stem}.ipynb")
    return elapsed


def _select(names: list[str]) -> list[Path]:
    every = sources()
    if not names:
        return every
    chosen = []
    for name in names:
        name = Path(name).stem
        found = [s for s in every if s.stem == name or s.stem.split("-", 1)[0] == name]
        found = found or [s for s in every if name in s.stem]
        if len(found) != 1:
            raise SystemExit(
                f"{name!r} names {len(found)} notebooks; choose from {[s.stem for s in every]}"
            )
        chosen.append(found[0])
    return chosen


def main(argv: list[str] | None = None) -> None:
    """Refresh the notebooks named on the command line, or all of them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "names", nargs="*", help="notebooks to refresh (number or name); all by default"
    )
    args = parser.parse_args(argv)
    for source in _select(args.names):
        print(f"{source.stem}: running ...", flush=True)
        print(f"{source.stem}: saved ({refresh(source):.1f} s)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
