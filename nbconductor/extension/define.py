"""Defining workflows and tasks from cells, and saying what a (re)definition changes.

:func:`define_cell` is what ``%%workflow`` and ``%%task`` do: parse the magic line,
compile the cell (:mod:`nbconductor.extension.cell`), check a workflow for calls that
break replay (:mod:`nbconductor.extension.lint`), register it with the cell's
normalized source (so versions follow the cell text) and bind its name.

:func:`on_registered` listens to the registry while the extension is loaded, so a
definition made by a magic or by a plain ``@workflow`` in a cell is announced in
that cell's output: a new version and what changed, the open executions it
affects, and the executions that were waiting for it and now resume.
"""

from __future__ import annotations

import difflib
import json
import sys
import threading
import time
from typing import Any

from IPython.core.error import UsageError

from nbconductor.engine.definition import (
    TaskDefinition,
    WorkflowDefinition,
    task,
    workflow,
)
from nbconductor.engine.engine import Engine
from nbconductor.engine.retry import Retry
from nbconductor.errors import NbconductorError
from nbconductor.extension.cell import compile_cell, normalized_source, parse_header
from nbconductor.extension.cell_header import CellHeader, Kind
from nbconductor.extension.lint import check_workflow_source, format_findings
from nbconductor.extension.session import kernel_engine
from nbconductor.storage.records import EventKind, Status

__all__ = ("define_cell", "describe_registration", "on_registered")

# How long a definition cell waits for the executions it resumes to replay, so that
# the cell can say whether they carry on or are blocked. Replays take milliseconds.
RESUME_WAIT = 2.0
_MAX_DIFF_LINES = 30
_MAX_IDS = 10  # ids listed in one announcement

# What the magic knew before registering: the latest recorded version of the name,
# read from the history file. The engine records the new version on its own thread,
# so reading it after registering could already see the new one.
_before: dict[tuple[str, str], tuple[str, str] | None] = {}
_before_lock = threading.Lock()


def define_cell(
    shell: Any, kind: Kind, line: str, cell: str
) -> WorkflowDefinition | TaskDefinition:
    """Define a workflow or task from a ``%%workflow`` / ``%%task`` cell.

    Args:
        shell: the running ``InteractiveShell``.
        kind: ``"workflow"`` or ``"task"``.
        line: the magic line after ``%%workflow`` / ``%%task``.
        cell: the cell body.

    Returns:
        The registered definition, also bound in the user namespace under the
        function's name.

    Raises:
        UsageError: a malformed magic line, an unsupported or invalid option, a cell
            without exactly one def (IPython shows these without a traceback).
        SyntaxError: with the cell's file name and line.
    """
    header = parse_header(line, kind=kind)
    _refuse_unsupported(header)
    try:
        compiled = compile_cell(shell, header, cell, kind=kind)
    except NbconductorError as exc:  # DefinitionError: no def, several, not async
        raise UsageError(str(exc)) from None
    function = compiled.function
    if isinstance(function, (WorkflowDefinition, TaskDefinition)):
        function = function.fn  # an @workflow/@task inside the cell: the magic's options win
    options = header.options
    name = options.get("name") or compiled.name
    source = normalized_source(header, cell)
    if kind == "workflow" and header.lint:
        findings = check_workflow_source(
            compiled.source, namespace=shell.user_ns, function=compiled.name
        )
        if findings:
            print(format_findings(findings), file=sys.stderr)
    engine = kernel_engine()
    key = (kind, name)
    with _before_lock:
        _before[key] = _latest_recorded(engine, kind, name)
    try:
        if kind == "workflow":
            definition = workflow(
                function,
                name=name,
                timeout=options.get("timeout"),
                signals=options.get("signals", ()),
                source=source,
            )
        else:
            retry = options.get("retry")
            definition = task(
                function,
                name=name,
                retry=Retry(**retry) if retry else None,
                timeout=options.get("timeout"),
                schedule_to_start=options.get("schedule_to_start"),
                schedule_to_close=options.get("schedule_to_close"),
                heartbeat=options.get("heartbeat"),
                runner=options.get("runner", "thread"),
                queue=options.get("queue"),
                priority=options.get("priority", 0),
                source=source,
            )
    except NbconductorError as exc:  # an invalid duration or retry policy
        raise UsageError(f"%%{kind} {name}: {exc}") from None
    finally:
        with _before_lock:
            _before.pop(key, None)
    shell.user_ns[compiled.name] = definition
    return definition


def _refuse_unsupported(header: CellHeader) -> None:
    # Refused rather than accepted and ignored: a workflow meant for another queue
    # or meant to be retried must not silently run once, here.
    prog = f"%%{header.kind}"
    if header.kind == "workflow" and "queue" in header.options:
        raise UsageError(
            f"{prog}: --queue is not supported for workflows yet; every workflow runs on "
            "this kernel's engine (queues limit tasks: put --queue on the %%task cells)."
        )
    if header.kind == "workflow" and "retry" in header.options:
        raise UsageError(
            f"{prog}: --retry is not supported for workflows yet (tasks retry; a "
            "workflow fails when its code raises). Put --retry on the %%task cells."
        )


def _latest_recorded(engine: Engine | None, kind: str, name: str) -> tuple[str, str] | None:
    """(version, source) of the newest recorded definition of this name, if any."""
    if engine is None:
        return None
    try:
        records = [d for d in engine.store.definitions(name) if d.kind == kind]
    except NbconductorError:
        return None
    return (records[-1].version, records[-1].source) if records else None


# --- announcing registrations ------------------------------------------------------------


def on_registered(definition: Any, previous: Any) -> None:
    """Registry listener: print what this (re)definition changes, in the running cell."""
    if definition is previous:
        return  # the same object registered again (`%conductor resume` does this)
    with _before_lock:
        recorded = _before.get((definition.kind, definition.name))
    try:
        text = describe_registration(definition, previous, kernel_engine(), recorded=recorded)
    except Exception as exc:  # the definition is registered; saying so must not fail it
        print(f"nbconductor: could not check open executions: {exc}", file=sys.stderr)
        return
    if text:
        print(text)


def describe_registration(
    definition: WorkflowDefinition | TaskDefinition,
    previous: WorkflowDefinition | TaskDefinition | None,
    engine: Engine | None,
    *,
    recorded: tuple[str, str] | None = None,
) -> str:
    """What a definition changes: new version (with a diff), affected and resumed
    executions. Empty when there is nothing to say (a first definition, a re-run of
    an unchanged cell).

    Args:
        definition: the definition just registered.
        previous: the definition it replaced in this process, if any.
        engine: the kernel's engine (None: only the version change is described).
        recorded: (version, source) of the newest version in the history file, read
            before registering; used when there is no ``previous`` in this process.
    """
    kind, name = definition.kind, definition.name
    lines: list[str] = []
    if previous is not None:
        old = (previous.version, previous.source)
        where = ""
    else:
        old, where = recorded, " in the history"
    changed = old is not None and old[0] != definition.version
    if changed:
        lines.append(f"{kind} {name}: new version {definition.version} (was {old[0]}{where})")
        lines.extend(_diff(old[1], definition.source))
    if engine is None:
        return "\n".join(lines)
    if kind == "workflow":
        lines.extend(_workflow_executions(definition, previous, engine, changed))
    elif changed:
        pending = _pending_task_executions(engine, name)
        if pending:
            lines.append(
                f"{_n(len(pending), 'open execution')} {'has' if len(pending) == 1 else 'have'} "
                f"task {name} pending; its next attempts run this version: {_ids(pending)}"
            )
    return "\n".join(lines)


def _workflow_executions(
    definition: WorkflowDefinition,
    previous: WorkflowDefinition | None,
    engine: Engine,
    changed: bool,
) -> list[str]:
    records = engine.list(status=Status.RUNNING, name=definition.name, limit=None)
    if not records:
        return []
    name = definition.name
    if previous is None:
        # Nothing in this process could run them before: they waited for this cell.
        ids = [r.id for r in records]
        conditions = _await_resumption(engine, ids)
        lines = [
            f"{name}: resuming {_n(len(ids), 'execution')} that waited for this "
            f"definition: {_ids(ids)}"
        ]
        for execution_id, condition in conditions.items():
            if condition:
                lines.append(f"  {execution_id}: {condition}")
        return lines
    older = [r for r in records if r.version != definition.version]
    if not changed or not older:
        return []
    versions = ", ".join(sorted({r.version for r in older}))
    return [
        f"This affects {_n(len(older), 'open execution')} started with version {versions}: "
        f"{_ids([r.id for r in older])}",
        "  They keep the code they are running in this kernel and replay with this "
        "version when they resume (blocked ones are replayed now); if the change "
        "alters steps they already took, they stop with a non-determinism error until "
        "the code is restored or they are terminated.",
    ]


def _await_resumption(engine: Engine, ids: list[str]) -> dict[str, str | None]:
    """Wait (briefly) for the engine to replay these executions; their conditions."""
    deadline = time.monotonic() + RESUME_WAIT
    pause = threading.Event()
    conditions: dict[str, str | None] = {}
    while True:
        conditions = {i: engine.get(i).condition for i in ids}
        waiting = [
            c
            for c in conditions.values()
            if c and c.startswith("waiting for the definition of workflow")
        ]
        if not waiting or time.monotonic() > deadline:
            return conditions
        pause.wait(0.005)


def _pending_task_executions(engine: Engine, task_name: str) -> list[str]:
    """Open executions with an attempt of this task still to run or running."""
    found = []
    for record in engine.list(status=Status.RUNNING, limit=200):
        scheduled, done = set(), set()
        for event in engine.history(record.id):
            if event.name == task_name and event.kind is EventKind.TASK_SCHEDULED:
                scheduled.add(event.command)
            elif _ends_task(event):
                done.add(event.command)
        if scheduled - done:
            found.append(record.id)
    return found


def _ends_task(event) -> bool:
    if event.kind in (EventKind.TASK_COMPLETED, EventKind.TASK_CANCEL_REQUESTED):
        return True
    return event.kind is EventKind.TASK_FAILED and bool(json.loads(event.data or "{}").get("final"))


def _diff(old: str, new: str) -> list[str]:
    lines = [
        "  " + line
        for line in difflib.unified_diff(
            old.splitlines(), new.splitlines(), "before", "now", lineterm="", n=1
        )
        if not line.startswith(("--- ", "+++ "))
    ]
    if len(lines) > _MAX_DIFF_LINES:
        lines = [*lines[:_MAX_DIFF_LINES], f"  ... {len(lines) - _MAX_DIFF_LINES} more lines"]
    return lines


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _ids(ids: list[str]) -> str:
    shown = ", ".join(ids[:_MAX_IDS])
    return shown + (f" and {len(ids) - _MAX_IDS} more" if len(ids) > _MAX_IDS else "")
