"""The tutorials in notebooks/: each ``.ipynb`` matches its ``.py`` source.

nbval (``pytest --nbval``) runs the notebooks and compares their outputs; these tests
check what it cannot: that a committed notebook is the one its source describes, and
that its outputs come from one run from top to bottom.
"""

from __future__ import annotations

import difflib
import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.py"))


def _load_percent_format():
    spec = importlib.util.spec_from_file_location("percent_format", NOTEBOOKS / "percent_format.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


percent_format = _load_percent_format()


def _ids(paths: list[Path]) -> list[str]:
    return [path.stem for path in paths]


# --- the reader ------------------------------------------------------------------------


def test_the_reader_uncomments_markdown_and_magics(tmp_path: Path) -> None:
    source = tmp_path / "99-sample.py"
    source.write_text(
        "# %% [markdown]\n"
        "# # Title\n"
        "#\n"
        "# Text with `%%task`.\n"
        "\n"
        "# %%\n"
        "# %load_ext nbconductor\n"
        "# # %d is a comment that looks like a magic\n"
        "rows = 1  # a comment\n"
        "# rows = %conductor sql SELECT 1\n"
        "# !ls\n"
        "\n"
        "\n"
        "# %%\n"
        "# %%task double(x: int) -> int\n"
        "return 2 * x\n",
        encoding="utf-8",
    )
    cells = percent_format.read_cells(source)
    assert [(cell.kind, cell.line) for cell in cells] == [
        ("markdown", 1),
        ("code", 6),
        ("code", 14),
    ]
    assert cells[0].source == "# Title\n\nText with `%%task`."
    assert cells[1].source == (
        "%load_ext nbconductor\n"
        "# %d is a comment that looks like a magic\n"
        "rows = 1  # a comment\n"
        "rows = %conductor sql SELECT 1\n"
        "!ls"
    )
    assert cells[2].source == "%%task double(x: int) -> int\nreturn 2 * x"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("import os\n# %%\n", "must start with a `# %%` marker"),
        ("# %% [raw]\nx\n", "not '# %% [raw]'"),
        ("# %% [markdown]\nNot commented\n", "a markdown line starts with '# '"),
    ],
)
def test_the_reader_refuses_what_it_does_not_know(
    tmp_path: Path, text: str, complaint: str
) -> None:
    source = tmp_path / "99-bad.py"
    source.write_text(text, encoding="utf-8")
    with pytest.raises(percent_format.SourceError, match=complaint.replace("[", r"\[")):
        percent_format.read_cells(source)


# --- the committed notebooks ---------------------------------------------------------


def test_every_notebook_has_a_source_and_every_source_a_notebook() -> None:
    notebooks = {path.stem for path in NOTEBOOKS.glob("*.ipynb")}
    assert notebooks, "no notebook found"
    assert notebooks == {path.stem for path in SOURCES}


@pytest.mark.parametrize("source", SOURCES, ids=_ids(SOURCES))
def test_the_committed_notebook_is_its_source(source: Path) -> None:
    """Edit the ``.py`` file, then run ``notebooks/refresh.py`` to rebuild the notebook."""
    expected = percent_format.notebook(source)
    saved = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    assert saved.metadata.kernelspec == expected.metadata.kernelspec
    differences = [
        line
        for cell, want in zip(saved.cells, expected.cells, strict=False)
        if (cell.cell_type, cell.get("id"), cell.source)
        != (want.cell_type, want.get("id"), want.source)
        for line in difflib.unified_diff(
            f"{cell.cell_type}\n{cell.source}".splitlines(),
            f"{want.cell_type}\n{want.source}".splitlines(),
            f"{source.stem}.ipynb {cell.get('id')}",
            f"{source.name} {want.get('id')}",
            lineterm="",
        )
    ]
    rebuild = f"run notebooks/refresh.py {source.stem} to rebuild the notebook from its source"
    assert not differences, rebuild + ":\n" + "\n".join(differences)
    assert len(saved.cells) == len(expected.cells), rebuild


@pytest.mark.parametrize("source", SOURCES, ids=_ids(SOURCES))
def test_the_saved_outputs_come_from_one_run_from_top_to_bottom(source: Path) -> None:
    saved = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    code = [cell for cell in saved.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    timed = [cell.id for cell in code if "execution" in cell.metadata]
    assert not timed, f"cells {timed} carry run timestamps; save with notebooks/refresh.py"


@pytest.mark.parametrize("source", SOURCES, ids=_ids(SOURCES))
def test_every_tutorial_starts_from_a_fresh_history_and_deletes_it(source: Path) -> None:
    # sanitize.cfg rewrites the temporary folder's path by its prefix, and nbval kills
    # its kernels before atexit runs: the first and last cells must stay as they are.
    code = [cell.source for cell in percent_format.read_cells(source) if cell.kind == "code"]
    first, last = code[0], code[-1]
    assert 'tempfile.mkdtemp(prefix="nbconductor-tutorial-")' in first
    assert f'"{source.stem}.duckdb"' in first
    assert first.index("NBCONDUCTOR_DB") < first.index("%load_ext nbconductor")
    assert last == "%unload_ext nbconductor\nshutil.rmtree(tutorial_folder)"
