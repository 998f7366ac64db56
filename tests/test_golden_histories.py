"""Golden histories: every history an earlier version recorded, this version replays.

The files under tests/golden/histories/<version>/ were written by that version's
recorder (tests/golden/record.py) and are never rewritten; this test only reads them.
Each is replayed against the definitions in tests/golden/workflows.py and must produce
the same commands (no NonDeterminismError) and close the way it was recorded: same
status, same result, same error. Changed definitions fed the same history must fail,
or the check proves nothing. See docs/howto/versioning.md#the-compatibility-promise.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from golden import record, workflows
from golden.workflows import add, flaky, greet, refuse

import nbconductor as nc
from nbconductor.engine.runtime import replay as replay_runtime
from nbconductor.errors import ContinueAsNew, NonDeterminismError
from nbconductor.storage import codec
from nbconductor.storage.records import EventKind
from nbconductor.testing import load_history, replay

HISTORIES = Path(__file__).resolve().parent / "golden" / "histories"
FRAME_TAGS = {"pandas", "polars", "arrow"}


def _version_key(path: Path) -> tuple:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)), path.name


FILES = sorted(HISTORIES.glob("*/*.json"), key=_version_key)  # oldest version first
READABLE_FORMATS = {"nbconductor golden history 1"}

# How each status closes a history, and the field of that event holding the outcome.
CLOSING = {
    "completed": (EventKind.EXECUTION_COMPLETED, "result"),
    "failed": (EventKind.EXECUTION_FAILED, "error"),
    "continued_as_new": (EventKind.EXECUTION_CONTINUED_AS_NEW, "input"),
}

# What each scenario is about, as (kind, name, data fields) its histories must hold: a
# file that lost them (or a format that renamed them) no longer tests what it claims.
STEPS = {
    "tasks": [
        (EventKind.TASK_FAILED, "golden_flaky", {"final": False}),
        (EventKind.TASK_COMPLETED, "golden_flaky", {"result": "inventory fetched on attempt 3"}),
        (EventKind.TASK_FAILED, "golden_refuse", {"final": True}),
    ],
    "timer": [
        (EventKind.TIMER_STARTED, None, {"due": "2024-05-02T09:00:00+00:00"}),
        (EventKind.TIMER_FIRED, None, {}),
    ],
    "signals": [
        (EventKind.SIGNAL_RECEIVED, "paid", {}),
        (EventKind.TIMER_FIRED, None, {}),  # the timeout of the wait for "review"
        (EventKind.UPDATE_ACCEPTED, "approve", {"payload": "ann"}),
        (EventKind.UPDATE_COMPLETED, "approve", {"result": "approved by ann"}),
        (EventKind.SIGNAL_RECEIVED, "item", {"payload": None}),
    ],
    "concurrency": [
        (EventKind.TASK_COMPLETED, "golden_square", {"result": 9}),
        (EventKind.TIMER_CANCELLED, None, {}),  # the sleep that lost the race
    ],
    "child": [
        (EventKind.CHILD_STARTED, "golden_child", {"child_id": "golden-child/1"}),
        (EventKind.SIGNAL_SENT, "extra", {"payload": 5}),
        (EventKind.CHILD_CLOSED, None, {"status": "completed", "result": 35}),
    ],
    "saga": [
        (EventKind.TASK_FAILED, "golden_ship", {"final": True}),
        (EventKind.TASK_COMPLETED, "golden_refund", {}),
        (EventKind.TASK_COMPLETED, "golden_release", {}),
    ],
    "continue_as_new": [
        (EventKind.EXECUTION_CONTINUED_AS_NEW, None, {"next_id": "golden-continue_as_new#2"}),
    ],
    "markers": [
        (EventKind.MARKER_RECORDED, "patch:formal-greeting", {}),
        (EventKind.MARKER_RECORDED, "side_effect", {}),
    ],
    "payloads": [
        (EventKind.SIGNAL_RECEIVED, "note", {}),
        (EventKind.TASK_COMPLETED, "golden_total_due", {}),
    ],
}


def golden(path: Path) -> dict:
    return json.loads(path.read_text())


def executions(path: Path) -> list[tuple[dict, list]]:
    return [(run, load_history(run["events"])) for run in golden(path)["executions"]]


def file_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def oldest(scenario: str) -> Path:
    """The first recorded file of a scenario."""
    return next(path for path in FILES if golden(path)["scenario"] == scenario)


def holds_a_frame(value: Any) -> bool:
    if isinstance(value, dict):
        return value.get(codec.TAG) in FRAME_TAGS or any(map(holds_a_frame, value.values()))
    return isinstance(value, list) and any(map(holds_a_frame, value))


def encoded(value: Any) -> Any:
    """A value as the codec stores it (JSON), so NaN, frames and sets compare by content."""
    return json.loads(codec.encode(value))


def replayed_outcome(definition, events) -> tuple[str, Any]:
    """Replay a closed history; the status its code reaches and the outcome, as stored."""
    runtime, pending = replay_runtime(definition, events)
    assert runtime.closed and pending == [], "the code goes on where the history ended"
    main = runtime.main
    error = main.exception()
    if error is None:
        return "completed", encoded(main.result())
    if isinstance(error, ContinueAsNew):
        return "continued_as_new", json.loads(error.input_text)
    return "failed", {"type": type(error).__name__, "message": str(error)}


# --- the committed files ------------------------------------------------------------------


def test_every_scenario_and_workflow_has_a_committed_history():
    recorded_scenarios = {golden(path)["scenario"] for path in FILES}
    recorded_workflows = {run["workflow"] for path in FILES for run, _ in executions(path)}
    scenarios = {scenario.name for scenario in record.scenarios(workflows)}
    assert scenarios <= recorded_scenarios, "record the new scenarios (tests/golden/record.py)"
    assert set(workflows.WORKFLOWS) <= recorded_workflows
    assert set(STEPS) <= recorded_scenarios


@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_file_is_in_a_format_this_version_reads(path):
    content = golden(path)
    assert content["format"] in READABLE_FORMATS
    recorded_with = content["recorded_with"]
    assert recorded_with["nbconductor"] == path.parent.name, "a version's files in its folder"
    assert isinstance(recorded_with["schema_version"], int) and recorded_with["schema_version"] > 0
    for run, events in executions(path):
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert {e.execution_id for e in events} == {run["id"]}
        started, closing = events[0], events[-1]
        assert started.kind is EventKind.EXECUTION_STARTED and started.name == run["workflow"]
        started_data = json.loads(started.data)
        assert started_data["workflow"] == run["workflow"]
        assert {"version", "input"} <= set(started_data)
        kind, field = CLOSING[run["status"]]
        assert closing.kind is kind and field in json.loads(closing.data)


@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_history_holds_the_steps_its_scenario_is_about(path):
    content = golden(path)
    events = [event for _, history in executions(path) for event in history]
    for kind, name, fields in STEPS.get(content["scenario"], []):
        assert any(
            event.kind is kind
            and (name is None or event.name == name)
            and fields.items() <= json.loads(event.data).items()
            for event in events
        ), f"{content['scenario']} has no {kind.value} {name or ''} with {fields}"


# --- replay ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_history_replays_on_the_current_code(path):
    for run, events in executions(path):
        replay(events, workflows.WORKFLOWS[run["workflow"]])  # NonDeterminismError fails it


@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_replay_closes_as_recorded(path):
    for run, events in executions(path):
        status, outcome = replayed_outcome(workflows.WORKFLOWS[run["workflow"]], events)
        assert status == run["status"]
        _, field = CLOSING[status]
        recorded = json.loads(events[-1].data)[field]
        if status == "failed":
            assert {key: recorded[key] for key in outcome} == outcome
        else:
            assert outcome == recorded


@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_stored_payloads_still_decode_to_what_they_were(path):
    """Every payload the histories hold decodes, and encodes back to the same JSON.

    Frames are the exception: their Arrow bytes name the library versions that wrote
    them, so they are compared by content (below) rather than by their bytes.
    """
    for _, events in executions(path):
        for event in events:
            data = json.loads(event.data)
            for key in ("input", "result", "payload", "value"):
                if key in data:
                    value = codec.decode(json.dumps(data[key]))
                    if not holds_a_frame(data[key]):
                        assert encoded(value) == data[key], (event.seq, event.kind, key)


def test_payload_types_come_back_as_themselves():
    _, events = executions(oldest("payloads"))[0]
    args = codec.decode(json.dumps(json.loads(events[0].data)["input"]))["args"]
    invoice, frame, sent = args
    assert invoice == workflows.Invoice("INV-7", Decimal("99.95"), date(2024, 5, 1))
    assert frame.to_dict("list") == {"sku": ["a-1", "b-2"], "quantity": [3, 4]}
    assert sent.isoformat() == "2024-05-01T09:00:00+00:00"
    runtime, _ = replay_runtime(workflows.golden_payloads, events)
    result = runtime.main.result()
    assert result["invoice"] == invoice and result["priority"] is workflows.Priority.HIGH
    assert result["blob"] == b"\x00\x01golden" and result["pair"] == (1, "two")
    assert result["by_number"] == {1: "one", (2, 3): "tuple key"}
    assert result["note"]["scan"] == b"%PDF-1.7" and result["note"]["ref"] == (7, "b")
    assert result["labels"] == frozenset({"paid", "golden"}) and result["rows"] == (2, 2)


# --- the check has teeth ----------------------------------------------------------------


@nc.workflow(name="golden_tasks_reordered")
async def tasks_reordered(n: int) -> dict:
    fetched = await flaky("inventory")  # moved before the two additions
    total = await add(n, 1)
    total = await add(total, 2)
    try:
        await refuse("no such customer")
    except nc.TaskFailed as error:
        failure = [error.task, error.attempts, error.error_type, error.error_message]
    return {"total": total, "fetched": fetched, "failure": failure}


@nc.workflow(name="golden_parent_without_child")
async def parent_without_child(base: int) -> dict:
    from_child = await add(base * 10, 5)  # a task where the history has a child
    return {"child": None, "from_child": from_child}


@nc.workflow(name="golden_markers_unpatched")
async def markers_unpatched(name: str) -> dict:
    greeting = await greet(name, "Hi")  # the patched() guard removed
    return {"greeting": greeting}


@nc.workflow(name="golden_timer_longer")
async def timer_longer(label: str) -> dict:
    started = nc.now()
    await nc.sleep("3 days")  # a duration changed: replays, the recorded timer stands
    woke = nc.now()
    await nc.sleep_until(woke + timedelta(hours=2))
    return {"label": label, "slept": woke - started, "finished": nc.now()}


def root_history(scenario: str) -> list:
    return executions(oldest(scenario))[0][1]


@pytest.mark.parametrize(
    ("scenario", "changed", "recorded", "issued"),
    [
        ("tasks", tasks_reordered, "TaskScheduled 'golden_add'", "task 'golden_flaky'"),
        ("child", parent_without_child, "ChildStarted 'golden_child'", "task 'golden_add'"),
        ("markers", markers_unpatched, "MarkerRecorded 'patch:formal-greeting'", "'golden_greet'"),
    ],
    ids=["task-reordered", "child-replaced-by-task", "patch-removed"],
)
def test_a_changed_definition_does_not_replay(scenario, changed, recorded, issued):
    with pytest.raises(NonDeterminismError) as info:
        replay(root_history(scenario), changed)
    assert recorded in str(info.value) and issued in str(info.value)


def test_a_change_the_docs_call_safe_replays():
    replay(root_history("timer"), timer_longer)
    status, outcome = replayed_outcome(timer_longer, root_history("timer"))
    assert status == "completed" and outcome["slept"] == encoded(timedelta(days=1))


# --- the recorder ---------------------------------------------------------------------------


def test_the_recorder_keeps_a_file_that_exists(tmp_path, capsys):
    committed = oldest("tasks")
    shutil.copy(committed, tmp_path / committed.name)
    before = (tmp_path / committed.name).read_bytes()
    assert record.main(["--into", str(tmp_path), "--only", "tasks"]) == 0
    assert (tmp_path / committed.name).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [committed.name]
    assert "never rewritten" in capsys.readouterr().out
