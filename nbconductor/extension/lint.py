"""A determinism check for workflow code: a warning, never a refusal.

A workflow is replayed from its history after a restart, so its code must make the
same decisions every time it runs. Reading the clock, drawing random numbers or
doing I/O directly in workflow code breaks that; :func:`check_workflow_source`
finds the common cases with :mod:`ast` and says what to use instead.

Names are resolved the way Python would see them in the cell: ``import time as t``
makes ``t.time()`` a ``time.time()`` call, ``from random import choice`` makes
``choice()`` one, and a name bound in the code itself (``random = make_rng()``, a
parameter, a loop variable) is the user's own and never flagged. Names the code
does not bind come from earlier cells: pass the user namespace to resolve them;
without it they are taken to be the modules they are named after.

Functions nested in the workflow and decorated as tasks (``@task``, ``@nc.task(...)``)
are not workflow code and are skipped.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

__all__ = ("Finding", "check_workflow_source", "format_findings")

_NON_DETERMINISTIC = "makes replay non-deterministic"
_IO = "does I/O, which every replay would repeat"
_MOVE = "move this into a task"

# canonical dotted name -> (message, advice), for calls
_CALLS: dict[str, tuple[str, str]] = {
    **{
        name: (_NON_DETERMINISTIC, "use nc.now()")
        for name in (
            "time.time",
            "time.time_ns",
            "time.monotonic",
            "time.monotonic_ns",
            "time.perf_counter",
            "time.perf_counter_ns",
            "datetime.datetime.now",
            "datetime.datetime.utcnow",
            "datetime.datetime.today",
            "datetime.date.today",
            # `datetime` / `date` from an earlier cell, most likely the classes
            "datetime.now",
            "datetime.utcnow",
            "datetime.today",
            "date.today",
        )
    },
    "uuid.uuid1": (_NON_DETERMINISTIC, "use nc.uuid4()"),
    "uuid.uuid4": (_NON_DETERMINISTIC, "use nc.uuid4()"),
    "time.sleep": (
        "blocks the engine and is not durable",
        "use await nc.sleep(...) or await asyncio.sleep(...)",
    ),
    "open": (_IO, _MOVE),
    "io.open": (_IO, _MOVE),
    "os.system": (_IO, _MOVE),
    "os.popen": (_IO, _MOVE),
    "os.getenv": ("reads the environment, which may differ on replay", _MOVE),
    "get_ipython": ("runs IPython (a magic or !command) again on every replay", _MOVE),
}

# canonical module prefix -> (message, advice), for any call under it
_CALL_PREFIXES: dict[str, tuple[str, str]] = {
    "random.": (_NON_DETERMINISTIC, "use nc.random()"),
    "numpy.random.": (_NON_DETERMINISTIC, "use nc.random()"),
    "secrets.": (_NON_DETERMINISTIC, "use nc.random() or nc.uuid4()"),
    "requests.": (_IO, _MOVE),
    "httpx.": (_IO, _MOVE),
    "urllib.request.": (_IO, _MOVE),
    "socket.": (_IO, _MOVE),
    "subprocess.": (_IO, _MOVE),
}

# canonical names flagged wherever they are read, called or not
_READS: dict[str, tuple[str, str]] = {
    "os.environ": ("reads the environment, which may differ on replay", _MOVE),
}

# Modules whose public callables are recognised by identity in the user namespace
# (``from random import choice`` binds a bound method whose own name says "Random").
_KNOWN_MODULES = (
    "time",
    "datetime",
    "random",
    "secrets",
    "uuid",
    "os",
    "subprocess",
    "socket",
    "urllib.request",
    "io",
)

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
# nodes that bind their `.name`
_NAMED = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.ExceptHandler,
    ast.MatchAs,
    ast.MatchStar,
)


@dataclass(frozen=True)
class Finding:
    """One call in workflow code that would break replay.

    Attributes:
        line: the line number, counted from ``first_line``.
        col: the 0-based column of the call.
        call: what was found, as its canonical dotted name (``time.time()``).
        message: why it is a problem.
        replacement: what to do instead.
    """

    line: int
    col: int
    call: str
    message: str
    replacement: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.call} {self.message} → {self.replacement}"


def check_workflow_source(
    source: str,
    *,
    first_line: int = 1,
    namespace: Mapping[str, Any] | None = None,
    function: str | None = None,
) -> list[Finding]:
    """Find calls in workflow source that would make replay non-deterministic.

    Args:
        source: Python source of the workflow (a cell body, or a whole ``def``).
        first_line: the line number of the source's first line, so that findings
            carry the cell's line numbers.
        namespace: the user namespace, to resolve names the source does not bind
            (imports from earlier cells). Without it such names are taken to be
            the modules they are named after (``time``, ``random``, ...).
        function: check only the body of the top-level function of this name; the
            source's other top-level statements (imports, constants, the decorators)
            run once when the cell runs, not on replay, and are only read for the
            names they bind. For a compiled cell: ``compiled.source`` with
            ``function=compiled.name``.

    Returns:
        The findings, in source order. Source that does not parse (IPython syntax,
        a syntax error reported elsewhere) gives no findings.

    Example:
        >>> [str(f) for f in check_workflow_source("import time as t\\nx = t.time()")]
        ['line 2: time.time() makes replay non-deterministic → use nc.now()']
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    known = _known_objects() if namespace is not None else {}
    checker = _Checker(first_line - 1, namespace, known)
    checker.check_scope(tree, None, only=function)
    return sorted(checker.findings, key=lambda f: (f.line, f.col))


def format_findings(findings: list[Finding]) -> str:
    """A readable multi-line warning, or ``""`` when there is nothing to say.

    Example::

        This workflow may not replay the same way after a restart:
          line 3: time.time() makes replay non-deterministic → use nc.now()
          line 5: requests.get() does I/O, which every replay would repeat → move this into a task
        (a warning only; add --no-lint to the magic line to skip this check)
    """
    if not findings:
        return ""
    lines = ["This workflow may not replay the same way after a restart:"]
    lines.extend(f"  {finding}" for finding in findings)
    lines.append("(a warning only; add --no-lint to the magic line to skip this check)")
    return "\n".join(lines)


# --- name resolution -------------------------------------------------------------------

_SHADOWED = object()  # a name that is the user's own value, not a module or function


class _Scope:
    """The names one function (or the source itself) binds."""

    def __init__(self, parent: _Scope | None) -> None:
        self.parent = parent
        self.imports: dict[str, str] = {}  # local name -> canonical dotted name
        self.bound: set[str] = set()  # names assigned any other way

    def lookup(self, name: str) -> str | object | None:
        """The canonical name, ``_SHADOWED``, or ``None`` when no scope binds it."""
        scope: _Scope | None = self
        while scope is not None:
            # An assignment anywhere in a scope wins over an import: Python makes
            # the name local to the whole function, and it is the user's own value.
            if name in scope.bound:
                return _SHADOWED
            if name in scope.imports:
                return scope.imports[name]
            scope = scope.parent
        return None


def _known_objects() -> dict[int, str]:
    """Canonical names of the callables of already-imported stdlib modules, by id."""
    known: dict[int, str] = {}
    for module_name in _KNOWN_MODULES:
        module = sys.modules.get(module_name)
        if module is None:
            continue
        for attr, value in vars(module).items():
            # Only callables: ids of small ints and strings are shared with user values.
            if not attr.startswith("_") and callable(value):
                known.setdefault(id(value), f"{module_name}.{attr}")
    os_module = sys.modules.get("os")
    if os_module is not None:
        known[id(os_module.environ)] = "os.environ"
    known[id(open)] = "open"
    return known


def _namespace_name(value: Any, known: dict[int, str]) -> str | object:
    """What a value from the user namespace is, as a canonical dotted name."""
    if isinstance(value, ModuleType):
        return str(getattr(value, "__name__", "")) or _SHADOWED
    if id(value) in known:
        return known[id(value)]
    if callable(value):
        try:
            module, qualname = value.__module__, value.__qualname__
        except Exception:  # any object may define __getattr__; treat it as the user's
            return _SHADOWED
        if isinstance(module, str) and isinstance(qualname, str):
            return f"{module}.{qualname}"
    return _SHADOWED


def _dotted(node: ast.expr) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


# --- the walk --------------------------------------------------------------------------


class _Checker:
    def __init__(
        self, line_offset: int, namespace: Mapping[str, Any] | None, known: dict[int, str]
    ) -> None:
        self.line_offset = line_offset
        self.namespace = namespace
        self.known = known
        self.findings: list[Finding] = []

    def check_scope(
        self, scope_node: ast.AST, parent: _Scope | None, *, only: str | None = None
    ) -> None:
        """Check one scope; with ``only``, just the nested function of that name."""
        scope = _Scope(parent)
        if isinstance(scope_node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            args = scope_node.args
            for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                if arg is not None:
                    scope.bound.add(arg.arg)
        nodes = list(_own_nodes(scope_node))
        for node in nodes:
            _collect_binding(node, scope)
        for node in nodes:
            if isinstance(node, _SCOPES):
                if not _is_task(node) and only in (None, getattr(node, "name", None)):
                    self.check_scope(node, scope)
            elif only is not None:
                continue
            elif isinstance(node, ast.Call):
                self._check_call(node, scope)
            elif isinstance(node, (ast.Attribute, ast.Name)) and isinstance(node.ctx, ast.Load):
                self._check_read(node, scope)

    def _resolve(self, node: ast.expr, scope: _Scope) -> str | None:
        parts = _dotted(node)
        if parts is None:
            return None
        head, rest = parts[0], parts[1:]
        found = scope.lookup(head)
        if found is None and self.namespace is not None and head in self.namespace:
            found = _namespace_name(self.namespace[head], self.known)
        if found is _SHADOWED:
            return None
        base = found if isinstance(found, str) else head
        return ".".join([base, *rest])

    def _check_call(self, node: ast.Call, scope: _Scope) -> None:
        name = self._resolve(node.func, scope)
        if name is None or any(name.startswith(read + ".") for read in _READS):
            return  # os.environ.get(...) is reported once, as a read of os.environ
        if name.endswith(".get_ipython"):  # the shell's bound method, via the namespace
            name = "get_ipython"
        rule = _CALLS.get(name)
        if rule is None:
            rule = next((r for p, r in _CALL_PREFIXES.items() if name.startswith(p)), None)
        if rule is not None:
            self._add(node, f"{name}()", rule)

    def _check_read(self, node: ast.Attribute | ast.Name, scope: _Scope) -> None:
        name = self._resolve(node, scope)
        if name in _READS:
            self._add(node, name, _READS[name])

    def _add(self, node: ast.expr, call: str, rule: tuple[str, str]) -> None:
        message, replacement = rule
        self.findings.append(
            Finding(node.lineno + self.line_offset, node.col_offset, call, message, replacement)
        )


def _own_nodes(scope_node: ast.AST) -> Iterator[ast.AST]:
    """The nodes evaluated in this scope, and the nested scopes themselves.

    A nested function's decorators and defaults belong to the enclosing scope; its
    body does not. Comprehensions are folded into the enclosing scope (their loop
    variables then count as bound there: fewer findings, never false ones).
    """
    if isinstance(scope_node, ast.Lambda):
        stack: list[ast.AST] = [scope_node.body]
    else:
        stack = list(getattr(scope_node, "body", []))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            stack.extend(getattr(node, "decorator_list", []))
            stack.extend(node.args.defaults)
            stack.extend(d for d in node.args.kw_defaults if d is not None)
        elif isinstance(node, ast.ClassDef):
            stack.extend([*node.decorator_list, *node.bases, *node.keywords])
        else:
            stack.extend(ast.iter_child_nodes(node))


def _collect_binding(node: ast.AST, scope: _Scope) -> None:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                scope.imports[alias.asname] = alias.name
            else:  # `import urllib.request` binds `urllib`
                head = alias.name.split(".")[0]
                scope.imports[head] = head
    elif isinstance(node, ast.ImportFrom):
        for alias in node.names:
            if alias.name == "*":
                continue
            local = alias.asname or alias.name
            if node.level == 0 and node.module:
                scope.imports[local] = f"{node.module}.{alias.name}"
            else:  # a relative import: the user's own package
                scope.bound.add(local)
    elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
        scope.bound.add(node.id)
    elif isinstance(node, _NAMED) and node.name:  # def, class, except ... as, case ... as
        scope.bound.add(node.name)
    elif isinstance(node, ast.MatchMapping) and node.rest:
        scope.bound.add(node.rest)


def _is_task(node: ast.AST) -> bool:
    """True for a function decorated as a task: ``@task``, ``@nc.task(...)``."""
    for decorator in getattr(node, "decorator_list", []):
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        parts = _dotted(target)
        if parts and parts[-1] == "task":
            return True
    return False
