"""The tutorials in notebooks/: each ``.ipynb`` is its ``.py`` source (in notebook-sources/),
the code is clean, and a reader finds what the notebooks link to.

nbval (``pytest --nbval``) runs the notebooks and compares their outputs; these tests
check what it cannot: that a committed notebook is the one its source describes, that
its outputs come from one run from top to bottom, and that its code passes the
project's ruff rules, ``%%workflow`` and ``%%task`` bodies included.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from nbconductor.extension.cell import parse_header

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
TOOLING = ROOT / "notebook-sources"
SOURCES = sorted(TOOLING.glob("[0-9][0-9]-*.py"))


def _load_percent_format():
    spec = importlib.util.spec_from_file_location("percent_format", TOOLING / "percent_format.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


percent_format = _load_percent_format()


def _ids(paths: list[Path]) -> list[str]:
    return [path.stem for path in paths]


def _saved(source: Path) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / f"{source.stem}.ipynb", as_version=4)


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


def test_the_reader_takes_cell_tags_from_the_marker(tmp_path: Path) -> None:
    """nbval's directives are cell tags, which readers of the notebook do not see."""
    source = tmp_path / "99-tags.py"
    source.write_text(
        '# %% tags=["nbval-ignore-output"]\ntimings()\n\n# %% [markdown] tags=[]\n# Text\n',
        encoding="utf-8",
    )
    cells = percent_format.read_cells(source)
    assert [(cell.kind, cell.tags) for cell in cells] == [
        ("code", ("nbval-ignore-output",)),
        ("markdown", ()),
    ]
    nb = percent_format.notebook(source)
    assert nb.cells[0].metadata["tags"] == ["nbval-ignore-output"]
    assert nb.cells[0].source == "timings()"
    source.write_text("# %% tags=[nbval]\nx\n", encoding="utf-8")
    with pytest.raises(percent_format.SourceError, match="JSON list of strings"):
        percent_format.read_cells(source)


# --- the committed notebooks ---------------------------------------------------------


def test_the_folder_lab_opens_holds_the_tutorials_and_nothing_else() -> None:
    """Sources, the refresh script and nbval's sanitizer live in notebook-sources/."""
    listed = subprocess.run(
        ["git", "ls-files", "notebooks"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert listed, "git lists no file under notebooks/"
    assert [name for name in listed if not name.endswith(".ipynb")] == []


def test_no_nbval_directive_is_visible_to_readers() -> None:
    shown = [
        f"{path.name} {cell.get('id')}"
        for path in sorted(NOTEBOOKS.glob("*.ipynb"))
        for cell in nbformat.read(path, as_version=4).cells
        if "NBVAL_" in cell.source
    ]
    assert not shown, f"write nbval directives as cell tags (tags=[...]): {shown}"


_LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_every_link_in_a_notebook_opens_where_make_lab_serves_it() -> None:
    """``make lab`` serves the repository (starting in notebooks/), so ``../docs/*.md``
    resolves inside what it serves, as it does on GitHub; every target must exist."""
    recipe = next(
        line for line in (ROOT / "Makefile").read_text().splitlines() if "jupyter lab" in line
    )
    assert "--ServerApp.root_dir=." in recipe and "preferred_dir=notebooks" in recipe, recipe
    from test_docs import anchors  # the anchors GitHub makes for a page's headings

    broken, seen = [], 0
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "markdown":
                continue
            for target in _LINK.findall(cell.source):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                    continue
                seen += 1
                file_part, _, anchor = target.partition("#")
                dest = (NOTEBOOKS / file_part).resolve()
                if not dest.is_file() or not dest.is_relative_to(ROOT):
                    broken.append(f"{path.name}: {target} (no such file in the repository)")
                elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                    broken.append(f"{path.name}: {target} (no such heading)")
    assert seen > 20, f"only {seen} relative links found: is the pattern right?"
    assert not broken, "\n".join(broken)


def test_every_notebook_has_a_source_and_every_source_a_notebook() -> None:
    notebooks = {path.stem for path in NOTEBOOKS.glob("*.ipynb")}
    assert notebooks, "no notebook found"
    assert notebooks == {path.stem for path in SOURCES}


@pytest.mark.parametrize("source", SOURCES, ids=_ids(SOURCES))
def test_the_committed_notebook_is_its_source(source: Path) -> None:
    """Edit the ``.py`` file, then run ``notebook-sources/refresh.py`` to rebuild it."""
    expected = percent_format.notebook(source)
    saved = _saved(source)
    assert saved.metadata.kernelspec == expected.metadata.kernelspec
    differences = [
        line
        for cell, want in zip(saved.cells, expected.cells, strict=False)
        if (cell.cell_type, cell.get("id"), cell.source, cell.metadata.get("tags"))
        != (want.cell_type, want.get("id"), want.source, want.metadata.get("tags"))
        for line in difflib.unified_diff(
            f"{cell.cell_type} {cell.metadata.get('tags', [])}\n{cell.source}".splitlines(),
            f"{want.cell_type} {want.metadata.get('tags', [])}\n{want.source}".splitlines(),
            f"{source.stem}.ipynb {cell.get('id')}",
            f"{source.name} {want.get('id')}",
            lineterm="",
        )
    ]
    rebuild = f"run notebook-sources/refresh.py {source.stem} to rebuild the notebook"
    assert not differences, rebuild + ":\n" + "\n".join(differences)
    assert len(saved.cells) == len(expected.cells), rebuild


@pytest.mark.parametrize("source", SOURCES, ids=_ids(SOURCES))
def test_the_saved_outputs_come_from_one_run_from_top_to_bottom(source: Path) -> None:
    saved = _saved(source)
    code = [cell for cell in saved.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    timed = [cell.id for cell in code if "execution" in cell.metadata]
    assert not timed, f"cells {timed} carry run timestamps; save with notebook-sources/refresh.py"


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


# --- lint ------------------------------------------------------------------------------


_INDENT = "    "
# Names IPython defines in every notebook's namespace: the output cache the tutorials
# use (`_`), and its relatives.
_IPYTHON_NAMES = ["_", "__", "___", "In", "Out"]
_TRANSFORMER = TransformerManager()


def _as_python(cell_source: str, *, expand_braces: bool) -> tuple[str, int]:
    """A code cell as ruff should see it, and how far its lines are indented.

    A ``%%workflow NAME(...)`` / ``%%task NAME(...)`` cell becomes the function the
    magic compiles (nbconductor/extension/cell.py): its magic line becomes the
    ``def`` line, on the same line, and the body is indented under it. Always
    ``async def``: the magic makes a task async when its body awaits, and no rule
    cares about the difference. A cell that holds its own ``def`` keeps it, with the
    magic line as a comment. Other cell magics (``%%conductor sql``) stay as they
    are and ruff skips them. Line magics and shell commands are IPython syntax that
    ruff reads in a notebook, but it does not see the Python that IPython expands in
    a shell command's ``{...}``: such a line becomes the call IPython makes, with an
    f-string (nbconductor's own magics expand nothing) when ``expand_braces`` is
    true; ruff format wants the line as written.
    """
    first, _, body = cell_source.partition("\n")
    for kind in ("workflow", "task"):
        if first == f"%%{kind}" or first.startswith(f"%%{kind} "):
            header = parse_header(first[len(f"%%{kind}") :], kind=kind)
            break
    else:
        return _expand_braces(cell_source) if expand_braces else cell_source, 0
    if expand_braces:
        body = _expand_braces(body)
    if header.name is None:
        return f"# {first}\n{body}", 0
    signature = header.signature
    if not signature[len(header.name) :].lstrip().startswith("("):
        signature = f"{header.name}(){signature[len(header.name) :]}"
    lines = [_INDENT + line if line.strip() else "" for line in body.split("\n")]
    return "\n".join([f"async def {signature}:", *lines]), len(_INDENT)


def _expand_braces(code: str) -> str:
    lines = code.split("\n")
    for index, line in enumerate(lines):
        text = line.lstrip()
        if "!" not in text or "{" not in text or text.startswith("%%"):
            continue
        python = _TRANSFORMER.transform_cell(text).strip()
        if python == text.strip():
            continue  # Python, not IPython syntax
        try:
            tree = ast.parse(python)
        except SyntaxError:
            continue  # a line of a longer statement; ruff reports what is wrong
        shell = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("system", "getoutput")  # !cmd, x = !cmd
            and isinstance(node.args[0], ast.Constant)
        ]
        for call in shell:
            call.args[0] = ast.parse(f"f{call.args[0].value!r}", mode="eval").body
        if shell:
            lines[index] = line[: len(line) - len(text)] + ast.unparse(tree)
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("cell", "python"),
    [
        (
            "%%workflow order(order_id: str) -> str --timeout 1h\nx = await f(order_id)\n\nreturn x",
            "async def order(order_id: str) -> str:\n    x = await f(order_id)\n\n    return x",
        ),
        ("%%task tick --retry max_attempts=3\nreturn 1", "async def tick():\n    return 1"),
        (
            "%%task --timeout 5s\ndef f():\n    return 1",
            "# %%task --timeout 5s\ndef f():\n    return 1",
        ),
        ("%%conductor sql\nSELECT {x}", "%%conductor sql\nSELECT {x}"),
        ('%conductor signal a approve {"ok": true}', '%conductor signal a approve {"ok": true}'),
        (
            "!{sys.executable} -m nbconductor.cli list",
            "get_ipython().system(f'{sys.executable} -m nbconductor.cli list')",
        ),
        ("files = !ls {folder}", "files = get_ipython().getoutput(f'ls {folder}')"),
        ('d = {"!": 1}', 'd = {"!": 1}'),
    ],
)
def test_ruff_sees_a_cell_as_the_kernel_runs_it(cell: str, python: str) -> None:
    assert _as_python(cell, expand_braces=True)[0] == python


def _lint_notebooks(folder: Path, *, expand_braces: bool) -> dict[str, tuple[Path, list]]:
    """Write each source's code cells as a notebook for ruff, keyed by the file's name.

    The values are the source and its code cells, to map findings back to it.
    """
    written = {}
    for source in SOURCES:
        cells = [cell for cell in percent_format.read_cells(source) if cell.kind == "code"]
        nb = nbformat.v4.new_notebook()
        nb.metadata["language_info"] = {"name": "python"}
        for index, cell in enumerate(cells):
            made = nbformat.v4.new_code_cell(
                _as_python(cell.source, expand_braces=expand_braces)[0]
            )
            made["id"] = f"cell-{index:02d}"
            nb.cells.append(made)
        path = folder / f"{source.stem}.ipynb"
        nbformat.write(nb, path)
        written[path.name] = (source, cells)
    return written


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the ruff beside this Python with the project's configuration."""
    beside = Path(sys.executable).with_name("ruff")
    command = [str(beside)] if beside.exists() else [sys.executable, "-m", "ruff"]
    result = subprocess.run(
        [*command, *args[:1], "--no-cache", "--config", str(ROOT / "pyproject.toml"), *args[1:]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return result


def test_the_notebook_code_is_lint_clean(tmp_path: Path) -> None:
    """ruff's rules on every code cell, workflow and task bodies included.

    Findings are reported at their line in the ``.py`` source.
    """
    written = _lint_notebooks(tmp_path, expand_braces=True)
    result = _ruff(
        "check",
        "--config",
        f"builtins = {json.dumps(_IPYTHON_NAMES)}",
        "--output-format",
        "json",
        *(str(tmp_path / name) for name in written),
    )
    findings = []
    for finding in json.loads(result.stdout):
        source, cells = written[Path(finding["filename"]).name]
        cell = cells[finding["cell"] - 1]
        row, column = finding["location"]["row"], finding["location"]["column"]
        shift = _as_python(cell.source, expand_braces=True)[1] if row > 1 else 0
        findings.append(
            f"notebook-sources/{source.name}:{cell.line + row}:{column - shift}: "
            f"{finding['code']} {finding['message']}"
        )
    assert not findings, "\n".join(findings)


def test_the_notebook_code_is_formatted(tmp_path: Path) -> None:
    """``ruff format`` would change no code cell (a workflow body formatted as one)."""
    written = _lint_notebooks(tmp_path, expand_braces=False)
    result = _ruff("format", "--diff", *(str(tmp_path / name) for name in written))

    # ruff names every cell of a file it would change; keep those it would change.
    changes = []
    for block in re.split(r"(?m)^(?=--- )", result.stdout):
        header = re.match(r"--- (?P<file>\S+):cell (?P<cell>\d+)\n", block)
        if header and "\n@@" in block:
            source, cells = written[Path(header["file"]).name]
            line = cells[int(header["cell"]) - 1].line
            hunks = block[block.index("\n@@") + 1 :]
            changes.append(f"notebook-sources/{source.name}, the cell at line {line}:\n{hunks}")
    assert result.returncode == 0 and not changes, "\n".join(changes) or result.stdout


# --- the tutorial page -----------------------------------------------------------------


def test_the_tutorial_runs_twice_in_the_same_folder(tmp_path: Path, monkeypatch) -> None:
    """A reader who follows docs/tutorial.md again finds it works again: the second run
    starts over rather than finding the first run's order completed."""
    from test_docs import isolated, test_runnable_examples

    page = ROOT / "docs" / "tutorial.md"
    for _ in range(2):
        with contextlib.contextmanager(isolated.__wrapped__)(tmp_path, monkeypatch) as folder:
            test_runnable_examples(page, folder)
    assert (tmp_path / "tutorial.duckdb").exists()  # the same folder both times
