"""Turn a ``%%workflow`` / ``%%task`` cell into a function object.

A cell has two forms::

    %%workflow order(order_id: str, amount: float) --timeout 1d
    payment = await charge(order_id, amount)        # the body of `async def order(...)`
    return payment

    %%task --retry max_attempts=3
    @some_decorator                                 # exactly one (async) def in the cell
    def charge(order_id: str, amount: float) -> str:
        ...

:func:`parse_header` reads the magic line (it lives in
:mod:`nbconductor.extension.cell_header`, re-exported here), :func:`compile_cell` (or
:func:`build_function`) compiles the cell so that the function's globals are the
user namespace, ``inspect.getsource`` works and tracebacks and syntax errors name
the cell and the cell's own line numbers (the magic line is line 1).

IPython syntax in the body (``!cmd``, ``%magic``, ``obj?``) is transformed as
IPython would transform it in a normal cell, keeping every line on its own line
number. In a workflow such a line calls ``get_ipython()`` at run time, outside any
cell and again on every replay: :mod:`nbconductor.extension.lint` flags it so the
user moves it into a task.
"""

from __future__ import annotations
import __future__

import ast
import difflib
import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nbconductor.errors import DefinitionError
from nbconductor.extension.cell_header import RETRY_KEYS, CellHeader, Kind, parse_header, usage

__all__ = (
    "RETRY_KEYS",
    "CellHeader",
    "CompiledCell",
    "build_function",
    "compile_cell",
    "normalized_source",
    "parse_header",
    "usage",
)

# Only __future__ flags are taken from the shell's compiler: it may also carry
# PyCF_ALLOW_TOP_LEVEL_AWAIT, which would make `exec` return an unawaited coroutine.
_FUTURE_FLAGS = functools.reduce(
    operator.or_, (getattr(__future__, n).compiler_flag for n in __future__.all_feature_names)
)

# The body of the NAME(PARAMS) form is shown indented under its `def` line so that
# the cached source is real Python (for inspect.getsource, IPython's tracebacks).
_INDENT = "    "


# --- compiling the cell --------------------------------------------------------------


@dataclass(frozen=True)
class CompiledCell:
    """What :func:`compile_cell` made of a cell.

    Attributes:
        name: the Python name the caller should bind (the magic line's NAME, or the
            name of the cell's one ``def``).
        function: the function (for the one-``def`` form: whatever the name was
            bound to after the cell's decorators ran).
        filename: the name the source is cached under in ``linecache``; tracebacks
            show it as ``Cell In[N]``.
        source: the Python source cached under ``filename``, line for line the cell
            (line 1 is the ``def`` line or a comment holding the magic line). Lint
            it as ``check_workflow_source(source, function=name, namespace=...)``
            to get the cell's line numbers and the parameters as local names.
    """

    name: str
    function: Callable[..., Any]
    filename: str
    source: str


def build_function(shell, header: CellHeader, body: str, *, kind: Kind) -> Callable[..., Any]:
    """Compile a cell into a function; see :func:`compile_cell`."""
    return compile_cell(shell, header, body, kind=kind).function


def compile_cell(shell, header: CellHeader, body: str, *, kind: Kind) -> CompiledCell:
    """Compile a ``%%workflow`` / ``%%task`` cell body in ``shell``'s user namespace.

    With a NAME on the magic line the body becomes the body of
    ``async def NAME(PARAMS):`` (workflows always; tasks only when the body awaits at
    its top level, else a plain ``def``), so top-level ``await`` and ``return`` work.
    Without one the cell must hold exactly one top-level ``def``/``async def``; the
    cell runs in the user namespace (its imports stay), decorators apply as written,
    and the function's name keeps its previous binding: binding it is the caller's
    job, so a failed registration leaves no half-made object behind.

    Line numbers are the cell's: the magic line is line 1, the body starts at line 2,
    in tracebacks and in ``SyntaxError.lineno``.

    Args:
        shell: the running ``InteractiveShell``.
        header: the parsed magic line.
        body: the cell text after the magic line.
        kind: ``"workflow"`` or ``"task"``; must match ``header.kind``.

    Raises:
        SyntaxError: naming the cell's filename, line and text.
        DefinitionError: the one-``def`` form holds no def or several, or a workflow
            is a plain ``def``.
    """
    if header.kind != kind:
        raise ValueError(f"header was parsed for %%{header.kind}, not %%{kind}")
    cell = _Cell(shell, header, body)
    if header.name is None:
        return cell.compile_def()
    return cell.compile_wrapped()


class _Cell:
    """One cell being compiled: the raw lines, the transformed lines, error mapping."""

    def __init__(self, shell, header: CellHeader, body: str) -> None:
        self.shell = shell
        self.header = header
        self.kind = header.kind
        self.magic_line = f"%%{self.kind} {header.line}".rstrip()
        self.raw_lines = body.splitlines()
        self.code_lines = _transform(shell, body)
        self.number = _cell_number(shell)
        # Column of the signature in the magic line minus its column in line 1 of
        # what was parsed; set once line 1 is known.
        self.header_shift = 0

    # The NAME(PARAMS) form --------------------------------------------------------

    def compile_wrapped(self) -> CompiledCell:
        header = self.header
        assert header.name is not None and header.signature is not None
        body_text = "\n".join(self.code_lines) + "\n"
        try:
            body_tree = ast.parse(body_text)
        except SyntaxError as err:
            raise self._syntax_error(err, line_shift=1, col_shift=0) from None
        self._refuse_def_named_like_the_header(body_tree)
        is_async = self.kind == "workflow" or _awaits_at_top_level(body_tree.body)
        signature = header.signature
        if not signature[len(header.name) :].lstrip().startswith("("):  # `NAME [-> R]`
            signature = f"{header.name}(){signature[len(header.name) :]}"
        def_line = f"{'async ' if is_async else ''}def {signature}:"
        # Where the signature sits in the magic line minus where it sits in the def
        # line, so that errors in the parameters point at the user's text.
        self.header_shift = (
            len(f"%%{self.kind} ")
            + header.line.find(header.signature)
            - (len(def_line) - len(signature) - 1)
        )
        try:
            function_def = ast.parse(f"{def_line}\n{_INDENT}pass\n").body[0]
        except SyntaxError as err:
            raise self._syntax_error(err, line_shift=0, col_shift=0) from None
        assert isinstance(function_def, (ast.FunctionDef, ast.AsyncFunctionDef))
        # Body line k becomes cell line k + 1; columns move with the display indent so
        # that positions in the code object match the cached source exactly.
        for node in ast.walk(body_tree):
            if "lineno" in node._attributes:
                node.lineno += 1
                if getattr(node, "end_lineno", None) is not None:
                    node.end_lineno += 1
            if "col_offset" in node._attributes:
                node.col_offset += len(_INDENT)
                if getattr(node, "end_col_offset", None) is not None:
                    node.end_col_offset += len(_INDENT)
        function_def.body = body_tree.body or [ast.Pass(lineno=1, col_offset=0)]
        ast.fix_missing_locations(function_def)
        source = "\n".join(
            [def_line, *((_INDENT + line) if line.strip() else "" for line in self.code_lines)]
        )
        filename = self.shell.compile.cache(source + "\n", self.number)
        module = ast.Module(body=[function_def], type_ignores=[])
        try:
            code = compile(module, filename, "exec", self._flags(), dont_inherit=True)
        except SyntaxError as err:
            raise self._syntax_error(err, line_shift=0, col_shift=-len(_INDENT)) from None
        # A separate locals dict: the function's globals are the user namespace, but
        # the def binds nothing there (the caller binds NAME to the handle).
        scratch: dict[str, Any] = {}
        exec(code, self.shell.user_ns, scratch)
        return CompiledCell(header.name, scratch[header.name], filename, source + "\n")

    # The one-def form ---------------------------------------------------------------

    def compile_def(self) -> CompiledCell:
        # Line 1 is the magic line as a comment, so the source is the cell line for line.
        source = "\n".join([f"# {self.magic_line}", *self.code_lines]) + "\n"
        self.header_shift = -2
        try:
            tree = ast.parse(source)
        except SyntaxError as err:
            raise self._syntax_error(err, line_shift=0, col_shift=0) from None
        function_def = self._the_one_def(tree)
        filename = self.shell.compile.cache(source, self.number)
        try:
            code = compile(tree, filename, "exec", self._flags(), dont_inherit=True)
        except SyntaxError as err:
            raise self._syntax_error(err, line_shift=0, col_shift=0) from None
        user_ns = self.shell.user_ns
        name = function_def.name
        missing = object()
        previous = user_ns.get(name, missing)
        try:
            exec(code, user_ns)
            function = user_ns[name]
        finally:
            if previous is missing:
                user_ns.pop(name, None)
            else:
                user_ns[name] = previous
        return CompiledCell(name, function, filename, source)

    def _the_one_def(self, tree: ast.Module) -> ast.FunctionDef | ast.AsyncFunctionDef:
        prog = f"%%{self.kind}"
        defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        if not defs:
            raise DefinitionError(
                f"{prog}: the cell holds no function definition. Either name the {self.kind} "
                f"on the magic line and write its body below (`{prog} NAME(PARAMS)`), or "
                f"write one `{'async ' if self.kind == 'workflow' else ''}def NAME(...):` "
                "in the cell."
            )
        if len(defs) > 1:
            found = ", ".join(f"{d.name} (line {d.lineno})" for d in defs)
            raise DefinitionError(
                f"{prog}: the cell defines {len(defs)} functions at its top level: {found}; "
                f"a {prog} cell defines exactly one. Move the others to another cell or "
                "nest them inside it."
            )
        function_def = defs[0]
        if self.kind == "workflow" and not isinstance(function_def, ast.AsyncFunctionDef):
            raise DefinitionError(
                f"{prog}: `def {function_def.name}` (line {function_def.lineno}) must be "
                f"`async def {function_def.name}`: workflows are async functions."
            )
        return function_def

    def _refuse_def_named_like_the_header(self, body_tree: ast.Module) -> None:
        # `%%workflow order` over a cell holding `async def order(...)` would make a
        # workflow whose whole body defines a function: surely not what was meant.
        statements = [
            node
            for node in body_tree.body
            if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        ]
        if (
            len(statements) == 1
            and isinstance(statements[0], (ast.FunctionDef, ast.AsyncFunctionDef))
            and statements[0].name == self.header.name
        ):
            raise DefinitionError(
                f"%%{self.kind}: the magic line names {self.header.name} and the cell "
                f"defines `{self.header.name}` too. Write `%%{self.kind}` with no name above "
                "a def (options are fine), or write only the body under "
                f"`%%{self.kind} {self.header.name}(PARAMS)`."
            )

    # Helpers --------------------------------------------------------------------------

    def _flags(self) -> int:
        return self.shell.compile.flags & _FUTURE_FLAGS

    def _syntax_error(self, err: SyntaxError, *, line_shift: int, col_shift: int) -> SyntaxError:
        """Re-raise ``err`` against the raw cell, cached under a cell filename.

        ``err`` is in the coordinates of what was parsed (``line_shift`` lines before
        the cell's, columns ``col_shift`` off the transformed line's). IPython shows a
        SyntaxError with the line it finds in linecache under ``err.filename``, so the
        raw cell is cached and the position mapped to the user's own text.
        """
        raw_cell = [self.magic_line, *self.raw_lines]
        filename = self.shell.compile.cache("\n".join(raw_cell) + "\n", self.number)
        lineno = (err.lineno or 1) + line_shift
        end_lineno = err.end_lineno + line_shift if err.end_lineno else None
        offset = self._raw_column(lineno, err.offset, col_shift)
        end_offset = self._raw_column(end_lineno, err.end_offset, col_shift)
        text = raw_cell[lineno - 1] + "\n" if 1 <= lineno <= len(raw_cell) else err.text
        # type(err): an IndentationError or TabError stays one.
        return type(err)(err.msg, (filename, lineno, offset, text, end_lineno, end_offset))

    def _raw_column(self, lineno: int | None, offset: int | None, col_shift: int) -> int | None:
        if lineno is None or offset is None:
            return offset
        if lineno == 1:
            # Line 1 was the generated def line (or the magic-line comment).
            return max(1, offset + self.header_shift)
        offset += col_shift
        index = lineno - 2
        if 0 <= index < min(len(self.raw_lines), len(self.code_lines)):
            raw, code = self.raw_lines[index], self.code_lines[index]
            if raw != code and raw.endswith(code):  # IPython removed an indent or prompt
                offset += len(raw) - len(code)
        return max(1, offset)


def _cell_number(shell) -> int:
    """The number of the cell being run (the N of ``In [N]``).

    While a cell runs, ``shell.execution_count`` is already the *next* number when
    the cell is stored in history (IPython increments it before running); the
    running cell's own result object holds the right one.
    """
    running = getattr(getattr(shell, "displayhook", None), "exec_result", None)
    number = getattr(running, "execution_count", None)
    return number if isinstance(number, int) else shell.execution_count


def _transform(shell, body: str) -> list[str]:
    """Apply IPython's input transformations, keeping each line on its line number.

    ``transform_cell`` drops leading blank lines and folds a multi-line ``%magic \\``
    or a ``%%magic`` into one line; blank lines are put back after each shrunken
    stretch so that every following line keeps its number.
    """
    raw = body.splitlines()
    if not body.strip():
        return raw
    new = shell.transform_cell(body).splitlines()
    if new == raw:
        return new
    aligned: list[str] = []
    matcher = difflib.SequenceMatcher(None, raw, new, autojunk=False)
    for _tag, i1, i2, j1, j2 in matcher.get_opcodes():
        aligned.extend(new[j1:j2])
        aligned.extend([""] * ((i2 - i1) - (j2 - j1)))
    return aligned


def _awaits_at_top_level(statements: list[ast.stmt]) -> bool:
    """True if the code awaits outside nested functions and classes (so needs async)."""
    stack: list[ast.AST] = list(statements)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith)):
            return True
        if isinstance(node, ast.comprehension) and node.is_async:
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            # Only decorators and defaults run in the enclosing function.
            stack.extend(getattr(node, "decorator_list", []))
            stack.extend(node.args.defaults)
            stack.extend(d for d in node.args.kw_defaults if d is not None)
            continue
        if isinstance(node, ast.ClassDef):
            stack.extend([*node.decorator_list, *node.bases, *node.keywords])
            continue
        stack.extend(ast.iter_child_nodes(node))
    return False


# --- versioning ----------------------------------------------------------------------


def normalized_source(header: CellHeader, body: str) -> str:
    """The cell's source as hashed for a definition's version.

    The magic line (``%%workflow ...``) followed by the body, with line endings made
    ``\\n``, trailing whitespace removed, leading and trailing blank lines dropped
    and runs of blank lines folded into one, so that cosmetic edits do not make a
    new version. Whitespace inside multi-line strings is normalized the same way,
    on purpose.

    Example:
        >>> h = parse_header("f(x)", kind="task")
        >>> normalized_source(h, "\\n\\nreturn x   \\n\\n\\n")
        '%%task f(x)\\nreturn x\\n'
    """
    lines = [f"%%{header.kind} {header.line.strip()}".rstrip()]
    blank = False
    for line in body.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = line.rstrip()
        if not line:
            blank = len(lines) > 1  # blank lines right after the header are dropped
            continue
        if blank:
            lines.append("")
            blank = False
        lines.append(line)
    return "\n".join(lines) + "\n"
