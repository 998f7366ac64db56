"""The magic line of a ``%%workflow`` / ``%%task`` cell.

``NAME(PARAMS) [-> RETURNS] [--options]``, ``NAME`` alone (no parameters), or
nothing but options (then the cell holds one ``def``). :func:`parse_header` turns it
into a :class:`CellHeader`; :mod:`nbconductor.extension.cell` compiles the cell.
"""

from __future__ import annotations

import argparse
import ast
import io
import keyword
import re
import shlex
import tokenize
from dataclasses import dataclass, field
from typing import Any, Literal

from IPython.core.error import UsageError

from nbconductor.engine.signal_payload import parse_kind
from nbconductor.errors import DefinitionError

Kind = Literal["workflow", "task"]

__all__ = ("RETRY_KEYS", "CellHeader", "Kind", "parse_header", "usage")

#: The keys ``--retry`` accepts, with what each value must be.
RETRY_KEYS: dict[str, str] = {
    "max_attempts": "an integer >= 0, the first attempt included; 0 = unlimited",
    "initial": "a duration such as 1s",
    "backoff": "a number >= 1",
    "max_interval": "a duration such as 1m",
    "non_retryable": "exception type names separated by |, e.g. ValueError|KeyError",
}


@dataclass(frozen=True)
class CellHeader:
    """The parsed magic line of a ``%%workflow`` / ``%%task`` cell.

    Attributes:
        kind: ``"workflow"`` or ``"task"``.
        name: the function's name, or ``None`` when the cell holds one ``def``.
        params: the parameter list's source text (``""`` for ``NAME`` or ``NAME()``),
            or ``None`` when the cell holds one ``def``.
        returns: the return annotation's source text, if the line has ``-> ...``.
        options: keyword arguments for the ``workflow``/``task`` decorator; only
            the options given appear. Workflow keys: ``timeout``, ``signals``,
            ``queue``, ``retry``, ``name``; task keys: ``retry``, ``timeout``
            (start-to-close), ``schedule_to_start``, ``schedule_to_close``,
            ``heartbeat``, ``runner``, ``queue``, ``priority``, ``name``. Durations stay strings, ``signals`` is a list of
            names (or a dict: name -> what it carries) and ``retry`` a dict of ``Retry(...)`` keyword arguments (see
            :data:`RETRY_KEYS`; ``non_retryable`` a list of type names).
        lint: ``False`` when ``--no-lint`` was given (workflows only).
        line: the magic line as written (after ``%%workflow``).
        signature: ``line``'s text from the name through the return annotation,
            verbatim; the generated ``def`` line is built from it.
    """

    kind: Kind
    name: str | None
    params: str | None
    returns: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    lint: bool = True
    line: str = ""
    signature: str | None = None


class _Parser(argparse.ArgumentParser):
    """An argparse parser that raises IPython's UsageError instead of exiting."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}\n\n{self.format_help()}")


def _duration(text: str) -> str:
    # Durations stay strings (the decorators parse them); only refuse the empty one.
    if not text.strip():
        raise argparse.ArgumentTypeError("a duration is required, e.g. 30s or '5 minutes'")
    return text.strip()


def _name_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"{text!r}: write names separated by commas, e.g. a,b")
    return names


def _signal_list(text: str) -> list[str] | dict[str, Any]:
    """``approve,cancel`` (names), or ``approve={"ok":true},cancel=none`` (names and
    what each carries: signal_payload.parse_kind)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):  # commas inside a JSON example do not split
        depth += {"{": 1, "[": 1, "}": -1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    if not any("=" in part for part in parts):
        return _name_list(text)
    declared: dict[str, Any] = {}
    for part in parts:
        name, _, kind = part.partition("=")
        if not name.strip():
            raise argparse.ArgumentTypeError(f"{text!r}: a signal has no name before '='")
        try:
            declared[name.strip()] = parse_kind(kind) if kind.strip() else None
        except DefinitionError as exc:
            raise argparse.ArgumentTypeError(f"signal {name.strip()!r}: {exc}") from None
    return declared


def _non_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("a non-empty value is required")
    return text.strip()


def _retry(spec: str) -> dict[str, Any]:
    """Parse ``max_attempts=3,initial=2s,...`` into keyword arguments for ``Retry``."""
    valid = ", ".join(RETRY_KEYS)
    result: dict[str, Any] = {}
    for item in spec.split(","):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key or not value:
            raise argparse.ArgumentTypeError(
                f"{item.strip()!r} is not KEY=VALUE; write e.g. max_attempts=3,initial=2s "
                f"(keys: {valid})"
            )
        if key not in RETRY_KEYS:
            raise argparse.ArgumentTypeError(f"unknown retry key {key!r}; valid keys: {valid}")
        if key in result:
            raise argparse.ArgumentTypeError(f"retry key {key!r} is given twice")
        result[key] = _retry_value(key, value)
    return result


def _retry_value(key: str, value: str) -> Any:
    parsed: Any = value  # initial, max_interval: durations, parsed by Retry
    try:
        if key == "max_attempts":
            parsed = int(value)
            valid = parsed >= 0
        elif key == "backoff":
            parsed = float(value)
            valid = parsed >= 1.0  # also refuses nan
        elif key == "non_retryable":
            parsed = [name.strip() for name in value.split("|")]
            valid = all(all(p.isidentifier() for p in name.split(".")) for name in parsed)
        else:
            valid = True
    except ValueError:
        valid = False
    if not valid:
        raise argparse.ArgumentTypeError(f"{key}={value}: {key} must be {RETRY_KEYS[key]}")
    return parsed


def _build_parser(kind: Kind) -> _Parser:
    parser = _Parser(
        prog=f"%%{kind}",
        # argparse %-formats the usage: %(prog)s keeps the two percent signs.
        usage="%(prog)s [NAME[(PARAMS)] [-> RETURNS]] [options]",
        description=(
            f"With NAME the cell is the body of the {kind} (top-level await and return\n"
            f"work); without it the cell holds exactly one "
            f"{'async def' if kind == 'workflow' else 'def or async def'}."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
        allow_abbrev=False,  # --schedule-to-s... would be ambiguous and surprising
    )
    add = parser.add_argument
    if kind == "workflow":
        add("--timeout", type=_duration, metavar="T", help="execution timeout, e.g. 1h")
        add(
            "--signals",
            type=_signal_list,
            metavar="A,B",
            help='signals it accepts; NAME=none|str|int|float|bool|{"json":"example"}'
            " says what one carries",
        )
        add("--queue", type=_non_empty, metavar="Q", help="queue (worker) that runs it")
        add("--retry", type=_retry, metavar="SPEC", help="retry policy, see below")
        add("--name", type=_non_empty, metavar="N", help="registered name (default: NAME)")
        add("--no-lint", action="store_true", help="skip the determinism check")
    else:
        add("--retry", type=_retry, metavar="SPEC", help="retry policy, see below")
        add("--timeout", type=_duration, metavar="T", help="start-to-close timeout")
        add("--schedule-to-start", type=_duration, metavar="T", help="schedule-to-start timeout")
        add("--schedule-to-close", type=_duration, metavar="T", help="schedule-to-close timeout")
        add("--heartbeat", type=_duration, metavar="T", help="heartbeat timeout")
        add("--runner", type=_non_empty, metavar="R", help="where it runs: thread, process, ...")
        add("--queue", type=_non_empty, metavar="Q", help="the engine queue its attempts wait in")
        add("--priority", type=int, metavar="N", help="in its queue: lower starts first")
        add("--name", type=_non_empty, metavar="N", help="registered name (default: NAME)")
    parser.epilog = (
        "retry SPEC: KEY=VALUE,... e.g. max_attempts=3,initial=2s,backoff=2\n"
        + "\n".join(f"  {key:<15}{what}" for key, what in RETRY_KEYS.items())
    )
    return parser


def usage(kind: Kind) -> str:
    """The help text of ``%%workflow`` / ``%%task`` (for the magics' docstrings)."""
    return _build_parser(kind).format_help()


def parse_header(line: str, *, kind: Kind) -> CellHeader:
    """Parse the magic line: ``NAME(PARAMS) [-> RETURNS] [--options]``, ``NAME``, or empty.

    Example:
        >>> h = parse_header("order(order_id: str) --timeout 1d", kind="workflow")
        >>> h.name, h.params, h.options
        ('order', 'order_id: str', {'timeout': '1d'})
        >>> parse_header("--retry max_attempts=3,backoff=2", kind="task").options
        {'retry': {'max_attempts': 3, 'backoff': 2.0}}

    Raises:
        UsageError: for an unknown or malformed option (with the usage text) or a
            line that does not start with a name or an option.
    """
    if kind not in ("workflow", "task"):
        raise ValueError(f"kind must be 'workflow' or 'task', not {kind!r}")
    parser = _build_parser(kind)
    stripped = line.strip()
    name = params = returns = signature = None
    rest = line
    if stripped and not stripped.startswith("-"):
        name, params, returns, start, end = _read_signature(line, parser.prog)
        signature, rest = line[start:end], line[end:]
    try:
        argv = shlex.split(rest)
    except ValueError as err:  # an unclosed quote
        parser.error(f"cannot split the options {rest.strip()!r}: {err}")
    namespace = parser.parse_args(argv)
    # argparse's dests are the decorators' keyword names (task(schedule_to_start=...)).
    options = {
        key: value
        for key, value in vars(namespace).items()
        if key != "no_lint" and value is not None
    }
    return CellHeader(
        kind=kind,
        name=name,
        params=params,
        returns=returns,
        options=options,
        lint=not getattr(namespace, "no_lint", False),
        line=line,
        signature=signature,
    )


def _read_signature(line: str, prog: str) -> tuple[str, str, str | None, int, int]:
    """Find ``NAME[(PARAMS)] [-> RETURNS]``; return its parts and its span in ``line``."""
    tokens = tokenize.generate_tokens(io.StringIO(line).readline)
    first = next(tokens)
    while first.type in (tokenize.INDENT, tokenize.DEDENT):
        first = next(tokens)
    if first.type != tokenize.NAME or keyword.iskeyword(first.string):
        raise UsageError(
            f"{prog}: the line must start with the function's name, e.g. "
            f"`{prog} order(order_id: str)`, or be empty (then the cell holds one def); "
            f"got {line.strip()!r}"
        )
    name, start, end = first.string, first.start[1], first.end[1]
    params = ""
    after = line[end:]
    if after.lstrip().startswith("("):
        open_col = end + len(after) - len(after.lstrip())
        close_col = _closing_paren(tokens, line, open_col, prog)
        params, end = line[open_col + 1 : close_col].strip(), close_col + 1
    returns = None
    after = line[end:]
    if after.lstrip().startswith("->"):
        arrow = end + len(after) - len(after.lstrip())
        returns, end = _read_returns(line, arrow + 2, prog)
    return name, params, returns, start, end


def _closing_paren(tokens, line: str, open_col: int, prog: str) -> int:
    depth = 0
    try:
        for tok in tokens:
            if tok.type != tokenize.OP:
                continue
            if tok.string in "([{":
                depth += 1
            elif tok.string in ")]}":
                depth -= 1
                if depth == 0:
                    return tok.start[1]
    except tokenize.TokenError:
        pass
    raise UsageError(
        f"{prog}: the parameter list opened at column {open_col + 1} of {line.strip()!r} "
        "is not closed"
    )


def _read_returns(line: str, start: int, prog: str) -> tuple[str, int]:
    """The return annotation runs to the first `` --option`` that leaves a valid expression."""
    text = line[start:]
    cuts = [m.start() for m in re.finditer(r"\s--?[A-Za-z]", text)] + [len(text)]
    for cut in cuts:
        candidate = text[:cut].strip()
        if not candidate:
            continue
        try:
            ast.parse(candidate, mode="eval")
        except SyntaxError:
            continue
        return candidate, start + cut
    raise UsageError(f"{prog}: cannot read the return annotation in {line.strip()!r}")
