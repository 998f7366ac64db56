"""The documentation stays true: docstrings, the generated reference, links, examples.

- Every public name has a docstring and appears in docs/reference.md.
- docs/reference.md is exactly what docs/gen_reference.py writes now (run the script
  after changing a docstring, a signature, a magic or a command).
- Every relative link in README.md and docs/**/*.md points to a file that exists (and,
  with ``#anchor``, to a heading in it).
- The code blocks marked runnable run without error. A block is runnable when its
  info string is ``python test``::

      ```python test
      assert 1 + 1 == 2
      ```

  The blocks of one page run in order in one namespace, in a fresh working directory
  (so ``Engine("history.duckdb")`` writes under ``tmp_path``); top-level ``await``
  works as in a notebook. Engines a page leaves running are stopped afterwards and the
  workflow registry is put back as it was.
"""

from __future__ import annotations

import ast
import asyncio
import difflib
import inspect
import linecache
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nbconductor
from nbconductor import testing
from nbconductor.engine.definition import REGISTRY, TaskDefinition, WorkflowDefinition
from nbconductor.engine.engine import Engine, _running_engines
from nbconductor.engine.handle import Handle
from nbconductor.engine.schedules.scheduler import ScheduleInfo, Schedules

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
REFERENCE = DOCS / "reference.md"
GENERATOR = DOCS / "gen_reference.py"
REGENERATE = ".venv/bin/python docs/gen_reference.py"
RUNNABLE = "python test"

# Public methods known to lack a docstring. The reference shows them as
# "(no docstring)"; the test fails for any other. Remove a name once it has one.
KNOWN_UNDOCUMENTED = {
    "Engine.running",
    "Retry.to_dict",
    "ScheduleInfo.id",
    "ScheduleInfo.paused",
    "Status.closed",
    "Status.title",
}


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# --- docstrings and the reference --------------------------------------------------------


def _public_names() -> list[tuple[str, object]]:
    names = [(n, getattr(nbconductor, n)) for n in nbconductor.__all__ if n != "__version__"]
    names += [(n, getattr(testing, n)) for n in testing.__all__]
    return names


def _public_members() -> list[tuple[str, object]]:
    """Public methods and properties of the classes users call, as the reference names them."""
    classes = [
        (Engine, "Engine"),
        (Handle, "Handle"),
        (nbconductor.Retry, "Retry"),
        (nbconductor.Saga, "Saga"),
        (nbconductor.ChildHandle, "ChildHandle"),
        (nbconductor.Status, "Status"),
        (WorkflowDefinition, "WorkflowDefinition"),
        (TaskDefinition, "TaskDefinition"),
        (Schedules, "engine.schedules"),
        (ScheduleInfo, "ScheduleInfo"),
    ]
    found = []
    for cls, prefix in classes:
        for klass in cls.__mro__:
            if klass is object or klass.__module__ in ("builtins", "enum"):
                continue
            for name, value in vars(klass).items():
                if name.startswith("_"):
                    continue
                if isinstance(value, property):
                    found.append((f"{prefix}.{name}", value.fget))
                elif inspect.isfunction(value):
                    found.append((f"{prefix}.{name}", value))
    return found


def _doc(value: object) -> str:
    return (inspect.getdoc(value) or "").strip()


def test_every_public_name_has_a_docstring():
    missing = [name for name, value in _public_names() if not _doc(value)]
    assert not missing, f"public names without a docstring: {missing}"


def test_public_methods_have_docstrings():
    members = _public_members()
    missing = {name for name, value in members if not _doc(value)}
    new = sorted(missing - KNOWN_UNDOCUMENTED)
    assert not new, f"public methods without a docstring: {new}"


def test_every_public_name_appears_in_the_reference():
    text = REFERENCE.read_text()
    headings = set(re.findall(r"^#{2,6} `([^`]+)`", text, flags=re.M))
    wanted = [name for name, _ in _public_names()] + ["__version__"]
    wanted += [name for name, _ in _public_members()]
    missing = [name for name in wanted if name not in headings]
    assert not missing, f"not in docs/reference.md: {missing}; run {REGENERATE}"


def test_the_reference_is_generated_from_the_code_as_it_is():
    # In a fresh process: the reference must not depend on what other tests imported.
    done = subprocess.run(
        [sys.executable, str(GENERATOR), "--stdout"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    expected = done.stdout
    current = REFERENCE.read_text() if REFERENCE.exists() else ""
    if current != expected:
        diff = "".join(
            list(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    expected.splitlines(keepends=True),
                    "docs/reference.md (committed)",
                    "docs/reference.md (generated now)",
                    n=1,
                )
            )[:60]
        )
        pytest.fail(
            f"docs/reference.md is out of date with the docstrings and help texts; run "
            f"`{REGENERATE}` and commit the result.\n{diff}",
            pytrace=False,
        )


# --- links -------------------------------------------------------------------------------

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _prose(text: str) -> str:
    """The text outside fenced code blocks and inline code spans."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            out.append("")
            continue
        out.append("" if fenced else re.sub(r"`[^`]*`", "", line))
    return "\n".join(out)


def _slugify(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors GitHub makes for the headings of a Markdown file."""
    made, counts, fenced = set(), {}, False
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"^#{1,6} ", line):
            slug = _slugify(line.lstrip("#"))
            count = counts.get(slug, 0)
            counts[slug] = count + 1
            made.add(f"{slug}-{count}" if count else slug)
    return made


def test_relative_links_point_to_files_and_headings_that_exist():
    broken = []
    for page in markdown_files():
        for target in _LINK.findall(_prose(page.read_text())):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            path_part, _, anchor = target.partition("#")
            dest = (page.parent / path_part).resolve() if path_part else page
            if not dest.exists():
                broken.append(f"{_rel(page)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{_rel(page)}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_readme_names_every_doc_page():
    # Named as `docs/...` paths, not linked: a package index renders the README where
    # relative links lead nowhere (tests/test_package.py forbids them).
    readme = (ROOT / "README.md").read_text()
    named = {(ROOT / t).resolve() for t in re.findall(r"`(docs/[^`]+\.md)`", readme)}
    pages = [p for p in DOCS.rglob("*.md")]
    missing = [_rel(p) for p in pages if p.resolve() not in named]
    assert not missing, f"README.md's Documentation list does not name: {missing}"


# --- runnable examples -------------------------------------------------------------------


def runnable_blocks(path: Path) -> list[tuple[int, str]]:
    """``(first line number, code)`` of each block marked runnable, in order."""
    blocks, current, start = [], None, 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if current is None:
            if stripped.startswith("```") and stripped[3:].strip() == RUNNABLE:
                current, start = [], number + 1
        elif stripped.startswith("```"):
            blocks.append((start, "\n".join(current)))
            current = None
        else:
            current.append(line)
    assert current is None, f"{_rel(path)}: a runnable block starting at {start} is not closed"
    return blocks


def pages_with_examples() -> list[Path]:
    return [p for p in sorted(DOCS.rglob("*.md")) if runnable_blocks(p)]


def test_the_tutorial_and_how_tos_have_runnable_examples():
    pages = {_rel(p) for p in pages_with_examples()}
    assert "docs/tutorial.md" in pages
    assert any(p.startswith("docs/howto/") for p in pages)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A scratch working directory; the engines and definitions a page makes go away."""
    monkeypatch.chdir(tmp_path)
    before = set(_running_engines)
    with REGISTRY.isolated():
        yield tmp_path
        for engine in list(_running_engines):
            if engine not in before:
                engine.stop(grace=0)


@pytest.mark.parametrize("page", pages_with_examples(), ids=_rel)
def test_runnable_examples(page: Path, isolated):
    namespace: dict = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    filename = str(page)
    linecache.checkcache(filename)
    for start, code in runnable_blocks(page):
        # Padded so that tracebacks and inspect.getsource point at the Markdown's lines.
        source = "\n" * (start - 1) + code + "\n"
        compiled = compile(source, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        result = eval(compiled, namespace)
        if inspect.iscoroutine(result):  # the block used top-level await
            asyncio.run(result)
