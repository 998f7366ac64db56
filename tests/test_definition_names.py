"""Workflow and task names are unique across the test suite.

The registry is process-wide and keeps the last definition of a name, as a notebook
that re-runs a cell wants; so two test modules that each define a task ``charge``
break whichever ran first, depending on the order pytest imports them.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).parent
# Run in child processes of their own, never imported by the suite's process.
OWN_PROCESS = {"torture/torture_workload.py"}


def _decorator_kind(decorator: ast.expr) -> tuple[str, str | None] | None:
    """('task' | 'workflow', the explicit name=) for a definition decorator, else None."""
    call = decorator if isinstance(decorator, ast.Call) else None
    target = call.func if call else decorator
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
    if name not in ("task", "workflow"):
        return None
    explicit = None
    for keyword in call.keywords if call else ():
        if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
            explicit = keyword.value.value
    return name, explicit


def definitions() -> dict[tuple[str, str], set[str]]:
    found: dict[tuple[str, str], set[str]] = defaultdict(set)
    for path in TESTS.rglob("*.py"):
        module = path.relative_to(TESTS).as_posix()
        if module in OWN_PROCESS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for decorator in node.decorator_list:
                    kind = _decorator_kind(decorator)
                    if kind is not None:
                        found[(kind[0], kind[1] or node.name)].add(module)
    return found


def test_the_scan_finds_definitions():
    assert ("task", "golden_charge") in definitions() or len(definitions()) > 50


def test_no_two_test_modules_define_the_same_name():
    shared = {key: sorted(mods) for key, mods in definitions().items() if len(mods) > 1}
    assert not shared, f"rename one of each (the registry keeps only the last): {shared}"
