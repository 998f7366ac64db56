"""Record this version's golden histories: run by hand, never by the test suite.

From the repository root::

    python tests/golden/record.py              # into tests/golden/histories/<version>/
    python tests/golden/record.py --into /tmp/x  # somewhere else, to look at them
    python tests/golden/record.py --only tasks   # one scenario (repeatable)

Each scenario runs the workflow of tests/golden/workflows.py on a time-skipping engine
over a real DuckDB file, from a fixed virtual start time, and is written as one JSON
file holding the history of every execution it made (parent and child, each run of a
continue-as-new chain) plus the nbconductor version and history schema it was recorded
with. A file that exists is never overwritten: committed histories are the
compatibility promise (docs/howto/versioning.md#the-compatibility-promise), and a new
version of nbconductor adds its own folder next to the old ones.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import platform
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import nbconductor as nc
from nbconductor.storage.records import EventKind
from nbconductor.testing import TimeSkippingEngine, export_history, wait_for

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
HISTORIES = HERE / "histories"
FORMAT = "nbconductor golden history 1"
# A fixed virtual start: the same scenario records the same times on every machine.
START = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


@dataclass
class Scenario:
    """One recorded execution: what it starts, and what the outside world sends it."""

    name: str
    workflow: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    drive: Callable[[nc.Handle], None] = lambda handle: None
    ends: str = "completed"  # how the execution (its chain's last run) must end


def drive_signals(handle: nc.Handle) -> None:
    wait_for(lambda: handle.waiting_for == ["paid"], what="the wait for 'paid'")
    handle.signal("paid", {"amount": Decimal("12.50"), "by": "card"})
    wait_for(lambda: handle.query("stage") == "waiting for approval", what="the approval wait")
    assert handle.update("approve", "ann") == "approved by ann"
    for item in ("apples", "pears", None):
        handle.signal("item", item)


def drive_payloads(handle: nc.Handle) -> None:
    wait_for(lambda: handle.waiting_for == ["note"], what="the wait for 'note'")
    note = {"text": "paid in full", "at": START, "scan": b"%PDF-1.7", "ref": (7, "b")}
    handle.signal("note", note)


def scenarios(workflows: Any) -> list[Scenario]:
    import pandas as pd

    invoice = workflows.Invoice("INV-7", Decimal("99.95"), START.date())
    frame = pd.DataFrame({"sku": ["a-1", "b-2"], "quantity": [3, 4]})
    return [
        Scenario("tasks", "golden_tasks", (5,)),
        Scenario("timer", "golden_timer", ("nap",)),
        Scenario("signals", "golden_signals", ("order-1",), drive=drive_signals),
        Scenario("concurrency", "golden_concurrency", (4,)),
        Scenario("child", "golden_parent", (3,)),
        Scenario("saga", "golden_saga", ("lamp", Decimal("20.00")), ends="failed"),
        Scenario("continue_as_new", "golden_countdown", (3,)),
        Scenario("markers", "golden_markers", ("ann",)),
        Scenario("payloads", "golden_payloads", (invoice, frame, START), drive=drive_payloads),
    ]


def record(scenario: Scenario, workflows: Any, db: Path) -> dict:
    """Run one scenario to its end and return its golden file's content."""
    definition = workflows.WORKFLOWS[scenario.workflow]
    root_id = f"golden-{scenario.name}"
    with TimeSkippingEngine(db, start=START) as engine:
        handle = engine.start(definition, *scenario.args, id=root_id, **scenario.kwargs)
        scenario.drive(handle)
        with contextlib.suppress(nc.ExecutionFailed):  # some scenarios record a failure
            handle.result(timeout=60)
        if handle.status.value != scenario.ends:
            raise RuntimeError(f"{scenario.name} ended {handle.status.value}, not {scenario.ends}")
        executions = [_execution(engine, run) for run in _linked_runs(engine, root_id)]
        _, rows = engine.store.sql("SELECT value FROM meta WHERE key = 'schema_version'")
    return {
        "format": FORMAT,
        "scenario": scenario.name,
        "workflow": scenario.workflow,
        "recorded_with": {
            "nbconductor": nc.__version__,
            "schema_version": int(rows[0][0]),
            "python": platform.python_version(),
        },
        "executions": executions,
    }


def _linked_runs(engine: nc.Engine, root_id: str) -> list[str]:
    """The root execution, then the runs and children its history links to."""
    found, queue = [], [root_id]
    while queue:
        execution_id = queue.pop(0)
        found.append(execution_id)
        for event in engine.history(execution_id):
            data = json.loads(event.data)
            if event.kind is EventKind.CHILD_STARTED:
                queue.append(data["child_id"])
            elif event.kind is EventKind.EXECUTION_CONTINUED_AS_NEW:
                queue.append(data["next_id"])
    return found


def _execution(engine: nc.Engine, execution_id: str) -> dict:
    record = engine.describe(execution_id)
    events = json.loads(export_history(engine.history(execution_id)))
    for event in events:
        error = event["data"].get("error")
        if isinstance(error, dict) and "traceback" in error:
            # Paths of the machine that recorded, made relative to the repository.
            error["traceback"] = error["traceback"].replace(f"{ROOT}/", "")
    return {
        "id": execution_id,
        "workflow": record.workflow,
        "status": record.status.value,
        "events": events,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--into", type=Path, default=HISTORIES / nc.__version__)
    parser.add_argument("--only", action="append", help="record only this scenario")
    options = parser.parse_args(argv)
    # Import the workflows as golden.workflows, the name the test imports them by: the
    # histories store payload classes (Invoice, Priority) by that module path.
    if str(HERE.parent) not in sys.path:
        sys.path.insert(0, str(HERE.parent))
    workflows = importlib.import_module("golden.workflows")
    options.into.mkdir(parents=True, exist_ok=True)
    for scenario in scenarios(workflows):
        if options.only and scenario.name not in options.only:
            continue
        target = options.into / f"{scenario.name}.json"
        if target.exists():
            print(f"kept      {target} (recorded histories are never rewritten)")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            content = record(scenario, workflows, Path(tmp) / "history.duckdb")
        target.write_text(json.dumps(content, indent=1, ensure_ascii=True) + "\n")
        print(f"recorded  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
