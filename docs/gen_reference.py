"""Write docs/reference.md from the docstrings, the magics' help and the CLI's help.

Run it after changing a public docstring, signature, magic or command::

    .venv/bin/python docs/gen_reference.py           # rewrite docs/reference.md
    .venv/bin/python docs/gen_reference.py --check   # exit 1 if the file is out of date
    .venv/bin/python docs/gen_reference.py --stdout  # print the reference instead

``tests/test_docs.py`` runs it with ``--stdout`` in a fresh process and fails when the
committed file differs, so the reference cannot drift from the code.

What it covers: every name in ``nbconductor.__all__`` and ``nbconductor.testing.__all__``;
the public methods of ``Engine``, ``Handle``, ``engine.schedules`` and of what
``@workflow`` / ``@task`` return; the exception tree; the magics (from their help texts)
and the ``nbconductor`` command (from its argparse parser). Parts that do not exist yet
(widgets, CLI subcommands) get a marked placeholder.

The output goes through ``ruff format`` (as ``make test`` checks every Markdown file), so
signatures are written as Python stubs and examples as ``pycon`` blocks.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import enum
import importlib
import inspect
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "reference.md"
COMMAND = ".venv/bin/python docs/gen_reference.py"

# Google-style docstring sections, by how they are rendered.
_LIST_SECTIONS = {"Args", "Arguments", "Attributes", "Raises"}
_TEXT_SECTIONS = {"Returns", "Yields", "Note", "Notes", "Warning"}
_CODE_SECTIONS = {"Example", "Examples"}
_SECTION = re.compile(
    r"^({}):\s*$".format("|".join(sorted(_LIST_SECTIONS | _TEXT_SECTIONS | _CODE_SECTIONS)))
)
_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj):`~?([^`]+)`")
_DOUBLE_TICKS = re.compile(r"``([^`]+)``")
_NAME = r"\*{0,2}[A-Za-z_][\w.]*"
_ITEM = re.compile(rf"^({_NAME}(?:, {_NAME})*)(\s*\([^)]*\))?:\s*(.*)$")

# Classes whose objects nbconductor makes for you: their constructors are not shown.
NOT_BUILT_BY_USERS = {
    "ChildHandle",
    "Handle",
    "ScheduleInfo",
    "Schedules",
    "TaskDefinition",
    "WorkflowDefinition",
}

# How nbconductor.__all__ is grouped in the reference; names not listed here land in
# "Other" (so a new public name is never left out).
GROUPS: list[tuple[str, list[str]]] = [
    (
        "Defining workflows and tasks",
        ["workflow", "task", "Retry"],
    ),
    (
        "Running executions",
        ["Engine", "engine", "Handle", "Status"],
    ),
    (
        "Inside workflow code",
        [
            "sleep",
            "sleep_until",
            "now",
            "random",
            "uuid4",
            "side_effect",
            "gather",
            "race",
            "signal",
            "signals",
            "wait_condition",
            "state",
            "progress",
            "child",
            "start_child",
            "ChildHandle",
            "continue_as_new",
            "patched",
            "deprecate_patch",
            "Saga",
        ],
    ),
    ("Inside task code", ["heartbeat", "cancelled"]),
    (
        "Errors",
        [
            "NbconductorError",
            "ExecutionFailed",
            "ExecutionNotFound",
            "ExecutionClosed",
            "TaskFailed",
            "ChildFailed",
            "NonDeterminismError",
            "UpdateRejected",
            "ApplicationError",
        ],
    ),
    ("Package", ["__version__"]),
]


# --- rendering helpers -----------------------------------------------------------------


def _inline(text: str) -> str:
    """reST inline markup to Markdown: roles and double backticks become code spans."""
    text = _ROLE.sub(lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", text)
    text = _DOUBLE_TICKS.sub(r"`\1`", text)
    # Outside code spans, "<" would start an HTML tag on GitHub.
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(p if p.startswith("`") else p.replace("<", "&lt;") for p in parts)


def _dedent(lines: list[str]) -> list[str]:
    width = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
    return [x[width:] for x in lines]


def _code_block(lines: list[str]) -> list[str]:
    lines = _dedent(lines)
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    language = "pycon" if lines and lines[0].lstrip().startswith(">>>") else "text"
    return [f"```{language}", *lines, "```"]


def _list_items(lines: list[str]) -> list[str]:
    items: list[list[str]] = []
    for line in _dedent(lines):
        if not line.strip():
            continue
        if not line.startswith(" ") and _ITEM.match(line):
            items.append([line])
        elif items:
            items[-1].append(line.strip())
        else:  # prose before the first item
            items.append([line.strip()])
    out = []
    for item in items:
        head = _ITEM.match(item[0])
        rest = " ".join(item[1:])
        if head:
            name, kind, text = head.groups()
            label = ", ".join(f"`{n}`" for n in name.split(", "))
            label += f" {kind.strip()}" if kind else ""
            out.append(f"- {label}: {_inline((text + ' ' + rest).strip())}")
        else:
            out.append(f"- {_inline(' '.join(item))}")
    return out


def markdown(doc: str | None) -> list[str]:
    """A Google-style docstring as Markdown lines."""
    if not doc or not doc.strip():
        return ["*(no docstring)*"]
    lines = inspect.cleandoc(doc).splitlines()
    out: list[str] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            out.append(_inline(" ".join(x.strip() for x in paragraph)))
            out.append("")
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        section = _SECTION.match(line)
        if section:
            flush()
            name = section.group(1)
            i += 1
            body: list[str] = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
                body.append(lines[i])
                i += 1
            if name in _CODE_SECTIONS:
                out.append(f"**{name}:**")
                out.append("")
                out.extend(_code_block(body))
            elif name in _LIST_SECTIONS:
                out.append(f"**{name}:**")
                out.append("")
                out.extend(_list_items(body))
            else:
                text = " ".join(x.strip() for x in body if x.strip())
                out.append(f"**{name}:** {_inline(text)}")
            out.append("")
            continue
        if line.lstrip().startswith(">>>") or line.startswith("    "):
            flush()
            block = []
            while i < len(lines) and (
                lines[i].startswith(("    ", ">>>", "..."))
                or (
                    not lines[i].strip()
                    and i + 1 < len(lines)
                    and lines[i + 1].startswith(("    ", "..."))
                )
            ):
                block.append(lines[i])
                i += 1
            out.extend(_code_block(block))
            out.append("")
            continue
        if not line.strip():
            flush()
        else:
            paragraph.append(line)
        i += 1
    flush()
    while out and not out[-1]:
        out.pop()
    return out


def _annotation(value: Any) -> str:
    if isinstance(value, str):
        return re.sub(r"\b_(\w+)\.", r"\1.", value)  # "_uuid.UUID" (an import alias)
    if isinstance(value, type):
        return value.__name__
    return repr(value).replace("typing.", "")


def _default(value: Any, module: str) -> str:
    text = repr(value)
    try:
        ast.literal_eval(text)
        return text
    except (ValueError, SyntaxError):
        pass
    for name, candidate in vars(sys.modules.get(module, sys)).items():
        if candidate is value and not name.startswith("__"):
            return name
    return getattr(value, "__name__", "...")


def _parameters(fn: Callable, *, drop_self: bool) -> str:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return "..."
    module = getattr(fn, "__module__", "") or ""
    params = list(signature.parameters.values())
    if drop_self and params and params[0].name in ("self", "cls"):
        params = params[1:]
    parts: list[str] = []
    star = False
    for p in params:
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        text = p.name
        if p.kind is p.VAR_POSITIONAL:
            text, star = "*" + text, True
        elif p.kind is p.VAR_KEYWORD:
            text = "**" + text
        if p.annotation is not p.empty:
            text += f": {_annotation(p.annotation)}"
        if p.default is not p.empty:
            eq = " = " if p.annotation is not p.empty else "="
            text += eq + _default(p.default, module)
        parts.append(text)
        if p.kind is p.POSITIONAL_ONLY and (
            params.index(p) + 1 == len(params)
            or params[params.index(p) + 1].kind is not p.POSITIONAL_ONLY
        ):
            parts.append("/")
    returns = signature.return_annotation
    tail = "" if returns is signature.empty else f" -> {_annotation(returns)}"
    return f"({', '.join(parts)}){tail}"


def _stub(name: str, obj: Any) -> list[str]:
    """A Python stub for the signature (``ruff format`` wraps it nicely)."""
    if isinstance(obj, property):
        fn = obj.fget
        returns = inspect.signature(fn).return_annotation
        tail = "" if returns is inspect.Signature.empty else f" -> {_annotation(returns)}"
        return ["```python", "@property", f"def {name}(self){tail}: ...", "```"]
    if inspect.isclass(obj):
        shown = issubclass(obj, (BaseException, enum.Enum))
        bases = [b.__name__ for b in obj.__bases__ if shown and b not in (object, str)]
        head = f"class {obj.__name__}({', '.join(bases)}):" if bases else f"class {name}:"
        init = obj.__dict__.get("__init__")
        if init is None and dataclasses.is_dataclass(obj):
            init = obj.__init__
        if init is None or name in NOT_BUILT_BY_USERS:
            return ["```python", f"{head} ...", "```"]
        params = _parameters(init, drop_self=False)
        return ["```python", head, f"    def __init__{params}: ...", "```"]
    if callable(obj):
        prefix = "async def" if _is_async(obj) else "def"
        params = _parameters(obj, drop_self=False)
        return ["```python", f"{prefix} {name}{params}: ...", "```"]
    public = next(c for c in type(obj).__mro__ if not c.__name__.startswith("_"))
    return [f"`{name}` is an object of type `{public.__name__}`."]


def _is_async(fn: Any) -> bool:
    fn = inspect.unwrap(fn)
    return inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)


def _doc(obj: Any) -> str | None:
    if isinstance(obj, property):
        return obj.fget.__doc__
    if inspect.isclass(obj) or callable(obj) or inspect.ismodule(obj):
        return obj.__doc__
    return type(obj).__doc__  # an instance, such as nbconductor.state


def _public_members(cls: type) -> list[tuple[str, Any]]:
    """Public methods and properties, the class's own first, in definition order."""
    seen: set[str] = set()
    found: list[tuple[str, Any]] = []
    for klass in cls.__mro__:
        if klass is object or klass.__module__ in ("builtins", "enum"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, property) or inspect.isfunction(value):
                seen.add(name)
                found.append((name, value))
    return found


class Writer:
    """Collects the reference's Markdown and its table of contents."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.toc: list[tuple[int, str, str]] = []
        self._slugs: dict[str, int] = {}

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def heading(self, level: int, text: str, *, toc: bool = False) -> None:
        """A heading; with ``toc`` it is listed in the table of contents."""
        self.add(f"{'#' * level} {text}", "")
        slug = slugify(text)
        count = self._slugs.get(slug, 0)
        self._slugs[slug] = count + 1
        if toc:
            self.toc.append((level, text, f"{slug}-{count}" if count else slug))

    def entry(self, level: int, title: str, obj: Any) -> None:
        name = title.rsplit(".", 1)[-1]
        self.heading(level, f"`{title}`")
        constant = type(obj).__module__ == "builtins" and not callable(obj)
        if constant and not isinstance(obj, property):
            if isinstance(obj, dict):
                keys = ", ".join(f"`{k}`" for k in obj)
                self.add(f"A `dict` with the keys {keys}.", "")
            else:
                self.add(f"`{name} = {obj!r}`", "")
            return
        self.add(*_stub(name, obj), "")
        self.add(*markdown(_doc(obj)), "")

    def members(self, cls: type, prefix: str, level: int) -> None:
        for name, value in _public_members(cls):
            self.entry(level, f"{prefix}.{name}", value)


def slugify(heading: str) -> str:
    """The anchor GitHub makes for a heading (before de-duplication)."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _help_block(text: str) -> list[str]:
    return ["```text", *text.rstrip().splitlines(), "```", ""]


def _todo(what: str) -> str:
    return f"<!-- TODO(verify): {what} -->"


# --- the sections ----------------------------------------------------------------------


def package_section(w: Writer) -> None:
    import nbconductor
    from nbconductor.engine.definition import TaskDefinition, WorkflowDefinition
    from nbconductor.engine.engine import Engine
    from nbconductor.engine.handle import Handle
    from nbconductor.engine.schedules.scheduler import ScheduleInfo, Schedules
    from nbconductor.engine.schedules.spec import ScheduleSpec

    w.heading(2, "`nbconductor`", toc=True)
    w.add(*markdown(nbconductor.__doc__), "")
    w.add("```python", "import nbconductor as nc", "```", "")
    listed = {name for _, names in GROUPS for name in names}
    others = [n for n in nbconductor.__all__ if n not in listed]
    groups = [*GROUPS, ("Other", others)] if others else GROUPS
    for title, names in groups:
        names = [n for n in names if n in nbconductor.__all__]
        if not names:
            continue
        w.heading(3, title, toc=True)
        if title == "Errors":
            w.add(
                "Exported here for convenience; every error is described under "
                "[`nbconductor.errors`](#nbconductorerrors).",
                "",
            )
            for name in names:
                summary = markdown(getattr(nbconductor, name).__doc__)[0]
                w.add(f"- [`{name}`](#{slugify(name)}): {summary}")
            w.add("")
            continue
        for name in names:
            obj = getattr(nbconductor, name)
            if name == "__version__":
                w.heading(4, "`__version__`")
                w.add("The installed version of nbconductor, a string such as `'1.2.3'`.", "")
                continue
            w.entry(4, name, obj)
            if obj is Engine:
                w.add(
                    "An engine's `schedules` attribute is its [`Schedules`](#schedules).",
                    "",
                )
                w.members(Engine, "Engine", 5)
            elif obj is Handle:
                w.members(Handle, "Handle", 5)
            elif obj is nbconductor.Status:
                w.add("Members:", "")
                w.add(*(f"- `Status.{s.name}` = `{s.value!r}`" for s in obj), "")
                w.members(obj, "Status", 5)
            elif inspect.isclass(obj) and obj.__module__.startswith("nbconductor.engine"):
                w.members(obj, name, 5)

    w.heading(3, "What `@workflow` and `@task` return", toc=True)
    w.add(
        "The decorators register the function and return one of these objects in its place.",
        "",
    )
    for cls in (WorkflowDefinition, TaskDefinition):
        w.entry(4, cls.__name__, cls)
        w.members(cls, cls.__name__, 5)

    w.heading(3, "`Schedules`", toc=True)
    w.add(*markdown(Schedules.__doc__), "")
    w.add("See [Schedules](schedules.md) for when a schedule fires and its policies.", "")
    w.members(Schedules, "engine.schedules", 4)
    w.entry(4, "ScheduleInfo", ScheduleInfo)
    w.add("Fields:", "")
    w.add(
        *(f"- `{f.name}`: `{_annotation(f.type)}`" for f in dataclasses.fields(ScheduleInfo)),
        "",
    )
    w.members(ScheduleInfo, "ScheduleInfo", 5)
    w.heading(4, "Schedule options (`ScheduleSpec.create`)")
    w.add(
        "`engine.schedules.create(id, workflow, **options)` and `update(id, **changes)` "
        "take these keyword arguments:",
        "",
    )
    w.add(*_stub("create", ScheduleSpec.create), "")
    w.add(*markdown(ScheduleSpec.create.__doc__), "")


def errors_section(w: Writer) -> None:
    from nbconductor import errors

    w.heading(2, "`nbconductor.errors`", toc=True)
    w.add(*markdown(errors.__doc__), "")
    classes = [
        value
        for value in vars(errors).values()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == errors.__name__
    ]
    w.add("The tree (builtin bases in parentheses):", "", "```text")
    w.add(*_tree(classes), "```", "")
    for cls in classes:
        w.entry(3, cls.__name__, cls)


def _tree(classes: list[type]) -> list[str]:
    ours = set(classes)
    lines: list[str] = []

    def walk(cls: type, depth: int) -> None:
        builtins = [b.__name__ for b in cls.__bases__ if b not in ours]
        extra = f" ({', '.join(builtins)})" if builtins and depth else ""
        if not depth:
            extra = f" ({', '.join(builtins)})"
        lines.append(f"{'    ' * depth}{cls.__name__}{extra}")
        for sub in classes:
            if cls in sub.__bases__ and sub.__bases__[0] is cls:
                walk(sub, depth + 1)

    for cls in classes:
        if not any(b in ours for b in cls.__bases__):
            walk(cls, 0)
    return lines


def testing_section(w: Writer) -> None:
    from nbconductor import testing

    w.heading(2, "`nbconductor.testing`", toc=True)
    w.add(*markdown(testing.__doc__), "")
    for name in testing.__all__:
        w.entry(3, name, getattr(testing, name))


def extension_section(w: Writer) -> None:
    w.heading(2, "Jupyter magics", toc=True)
    try:
        extension = importlib.import_module("nbconductor.extension")
        magics = importlib.import_module("nbconductor.extension.magics")
    except Exception as exc:  # a layer still being built must not stop the reference
        w.add(_todo(f"the extension could not be imported ({exc}); document the magics"), "")
        return
    w.add(
        "`%load_ext nbconductor` starts this kernel's engine and registers the magics "
        "below. Each one is a thin layer over the Python API above.",
        "",
    )
    w.heading(3, "`%load_ext nbconductor`", toc=True)
    w.add(*markdown(extension.load_ipython_extension.__doc__), "")
    w.heading(3, "`%unload_ext nbconductor`", toc=True)
    w.add(*markdown(extension.unload_ipython_extension.__doc__), "")
    cls = magics.NbconductorMagics
    for title, method in (("`%%workflow`", cls.workflow), ("`%%task`", cls.task)):
        w.heading(3, title, toc=True)
        doc = inspect.cleandoc(method.__doc__ or "")
        first, _, rest = doc.partition("\n\n")
        w.add(_inline(first), "", *_help_block(rest))
    w.heading(3, "`%conductor` (alias `%wf`)", toc=True)
    w.add(*_help_block(inspect.cleandoc(cls.conductor.__doc__ or "")))
    subcommands = getattr(magics, "_SUBCOMMANDS", {})
    for name in subcommands:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            magics.conductor(f"{name} --help")
        w.heading(4, f"`%conductor {name}`")
        w.add(*_help_block(out.getvalue()))
    others = [n for n in getattr(extension, "__all__", ()) if "ipython_extension" not in n]
    if others:
        w.heading(3, "`nbconductor.extension`", toc=True)
        for name in others:
            w.entry(4, name, getattr(extension, name))


def widgets_section(w: Writer) -> None:
    w.heading(2, "Widgets", toc=True)
    try:
        widgets = importlib.import_module("nbconductor.widgets")
        problem = "it exports nothing yet"
    except Exception as exc:  # a layer still being built must not stop the reference
        widgets, problem = None, f"it does not import yet: {type(exc).__name__}"
    names = getattr(widgets, "__all__", ())
    if not names:
        w.add(
            _todo(f"nbconductor.widgets: {problem}; regenerate when the views are in"),
            "",
            "The widgets are being built. Until they are, a handle displays in a "
            "notebook as text and a small HTML table, and the `%conductor` magics show "
            "lists and histories as tables.",
            "",
        )
        return
    for name in names:
        w.entry(3, name, getattr(widgets, name))


def cli_section(w: Writer) -> None:
    w.heading(2, "The `nbconductor` command", toc=True)
    try:
        cli = importlib.import_module("nbconductor.cli")
    except Exception as exc:  # a layer still being built must not stop the reference
        w.add(_todo(f"nbconductor.cli could not be imported ({exc})"), "")
        return
    parser = cli.build_parser()
    w.add(*_help_block(parser.format_help()))
    if not _subcommands(parser):
        w.add(
            _todo("the CLI has no subcommands yet (list, show, history, signal, ... worker)"),
            "",
        )
        return
    _cli_commands(w, parser, "nbconductor", 3)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def _cli_commands(w: Writer, parser: argparse.ArgumentParser, prefix: str, level: int) -> None:
    for name, sub in _subcommands(parser).items():
        w.heading(level, f"`{prefix} {name}`", toc=level == 3)
        w.add(*_help_block(sub.format_help()))
        _cli_commands(w, sub, f"{prefix} {name}", min(level + 1, 6))


def control_section(w: Writer) -> None:
    try:
        control = importlib.import_module("nbconductor.remote")
    except Exception as exc:  # a layer still being built must not stop the reference
        w.add(_todo(f"nbconductor.remote could not be imported ({exc})"), "")
        return
    w.heading(2, "`nbconductor.remote`", toc=True)
    w.add(*markdown(control.__doc__), "")
    for name in getattr(control, "__all__", ()):
        obj = getattr(control, name)
        w.entry(3, name, obj)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            w.members(obj, name, 4)


# --- assembling ------------------------------------------------------------------------


def build() -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps help at the terminal's width
    os.environ["NO_COLOR"] = "1"
    w = Writer()
    package_section(w)
    errors_section(w)
    testing_section(w)
    extension_section(w)
    widgets_section(w)
    cli_section(w)
    control_section(w)
    head = [
        "# API reference",
        "",
        "<!-- Generated by docs/gen_reference.py from docstrings and help texts. "
        f"Do not edit: change the docstring, then run `{COMMAND}`. -->",
        "",
        "Every public function, class, magic and command of nbconductor, generated from "
        "the docstrings and help texts (`tests/test_docs.py` fails when this page and the "
        "code disagree). For explanations start with the [tutorial](tutorial.md) and "
        "[concepts](concepts.md).",
        "",
    ]
    toc = [f"{'  ' * (level - 2)}- [{_plain(text)}](#{anchor})" for level, text, anchor in w.toc]
    text = "\n".join([*head, *toc, "", *w.lines]).rstrip() + "\n"
    text = re.sub(r"\n{3,}", "\n\n", text)
    return _ruff_format(text)


def _plain(text: str) -> str:
    return text.replace("`", "")


def _ruff_format(text: str) -> str:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        raise SystemExit("ruff is needed to format the reference: pip install -e '.[test]'")
    done = subprocess.run(
        [ruff, "format", "--stdin-filename", str(TARGET.relative_to(ROOT)), "-"],
        input=text,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise SystemExit(f"ruff format failed on the reference:\n{done.stderr}")
    return done.stdout


def anchors(text: str) -> set[str]:
    """Every anchor the headings of a Markdown text make on GitHub (code blocks skipped)."""
    made: set[str] = set()
    counts: dict[str, int] = {}
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"^#{1,6} ", line):
            slug = slugify(line.lstrip("#"))
            count = counts.get(slug, 0)
            counts[slug] = count + 1
            made.add(f"{slug}-{count}" if count else slug)
    return made


def _anchor_check(text: str) -> Iterable[str]:
    """Anchors the table of contents uses that no heading makes (a generator bug)."""
    made = anchors(text)
    for anchor in re.findall(r"\]\(#([^)]+)\)", text):
        if anchor not in made:
            yield anchor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    mode.add_argument("--stdout", action="store_true", help="print instead of writing")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    text = build()
    missing = list(_anchor_check(text))
    if missing:
        raise SystemExit(f"the reference links to anchors no heading makes: {missing}")
    if args.stdout:
        sys.stdout.write(text)
        return 0
    current = TARGET.read_text() if TARGET.exists() else ""
    if args.check:
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is out of date; run {COMMAND}", file=sys.stderr)
            return 1
        return 0
    if current != text:
        TARGET.write_text(text)
        print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
