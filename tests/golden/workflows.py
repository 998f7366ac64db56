"""The workflows whose recorded histories are committed under tests/golden/histories/.

Every later version of nbconductor must replay those histories against these
definitions (tests/test_golden_histories.py). So treat each workflow here as one with
executions open forever: change it only the way docs/howto/versioning.md allows (new
steps guarded with ``nc.patched()``), never by reordering, removing or renaming steps,
and keep this module's import path (``golden.workflows``) and the names of the payload
classes, which the histories store by path.
"""

from __future__ import annotations

import collections
import enum
import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import nbconductor as nc

# --- payload types the codec tags ------------------------------------------------------


@dataclass(frozen=True)
class Invoice:
    """A dataclass payload: stored as its fields plus the class's import path."""

    number: str
    amount: Decimal
    due: date


class Priority(enum.Enum):
    """An Enum payload: stored as the member's name plus the class's import path."""

    LOW = 1
    HIGH = 2


# --- tasks -------------------------------------------------------------------------------
# Named golden_*: the registry is process-wide, and other tests have tasks called "add".

# Attempts per key of `flaky`, so that it fails a known number of times in the recorder.
_attempts: collections.Counter[str] = collections.Counter()


@nc.task(name="golden_add")
def add(a: int, b: int) -> int:
    return a + b


@nc.task(name="golden_flaky", retry=nc.Retry(initial="1s", max_attempts=5))
def flaky(key: str) -> str:
    _attempts[key] += 1
    if _attempts[key] < 3:
        raise ConnectionError(f"attempt {_attempts[key]} of {key} dropped")
    return f"{key} fetched on attempt {_attempts[key]}"


@nc.task(name="golden_refuse", retry=nc.Retry(initial="1s", max_attempts=2))
def refuse(reason: str) -> str:
    raise ValueError(reason)


@nc.task(name="golden_square")
def square(i: int) -> int:
    return i * i


@nc.task(name="golden_quick")
async def quick(label: str) -> str:
    return f"{label} first"


@nc.task(name="golden_greet")
def greet(name: str, greeting: str) -> str:
    return f"{greeting}, {name}"


@nc.task(name="golden_reserve")
def reserve(item: str) -> str:
    return f"reservation of {item}"


@nc.task(name="golden_release")
def release(reservation: str) -> str:
    return f"released {reservation}"


@nc.task(name="golden_charge")
def charge(amount: Decimal) -> str:
    return f"payment of {amount}"


@nc.task(name="golden_refund")
def refund(payment: str) -> str:
    return f"refunded {payment}"


@nc.task(name="golden_ship", retry=nc.Retry(max_attempts=1))
def ship(item: str) -> str:
    raise RuntimeError(f"no carrier takes {item}")


@nc.task(name="golden_total_due")
def total_due(invoices: list, frame) -> dict:
    return {
        "amount": sum((invoice.amount for invoice in invoices), Decimal(0)),
        "quantity": int(frame["quantity"].sum()),
        "first_due": min(invoice.due for invoice in invoices),
    }


@nc.task(name="golden_make_frame")
def make_frame(rows: int):
    import pandas as pd

    return pd.DataFrame(
        {
            "n": list(range(rows)),
            "name": [f"row-{i}" for i in range(rows)],
            "when": pd.date_range("2024-05-01", periods=rows, freq="h", tz="Europe/Paris"),
        }
    )


@nc.task(name="golden_sum_frame")
def sum_frame(frame) -> int:
    return int(frame["n"].sum())


# --- workflows, one per recorded scenario ------------------------------------------------


@nc.workflow
async def golden_tasks(n: int) -> dict:
    """Sequential tasks, a task that succeeds on its third attempt, one that fails."""
    total = await add(n, 1)
    total = await add(total, 2)
    fetched = await flaky("inventory")
    try:
        await refuse("no such customer")
    except nc.TaskFailed as error:
        failure = [error.task, error.attempts, error.error_type, error.error_message]
    return {"total": total, "fetched": fetched, "failure": failure}


@nc.workflow
async def golden_timer(label: str) -> dict:
    """A durable sleep and a sleep_until; now() advances with the fired timers."""
    started = nc.now()
    await nc.sleep("1 day")
    woke = nc.now()
    await nc.sleep_until(woke + timedelta(hours=2))
    return {"label": label, "slept": woke - started, "finished": nc.now()}


@nc.workflow
async def golden_signals(order: str) -> dict:
    """A signal, a signal whose timeout expires, an update, and a stream of signals."""
    nc.state["stage"] = "waiting for payment"
    paid = await nc.signal("paid")
    nc.state["stage"] = "waiting for review"
    review = await nc.signal("review", timeout="1 hour")  # nobody reviews in time
    nc.state["stage"] = "waiting for approval"
    await nc.wait_condition(lambda: "approver" in nc.state)
    nc.state["stage"] = "collecting items"
    items = []
    async for item in nc.signals("item"):
        if item is None:
            break
        items.append(item)
    nc.state["stage"] = "done"
    return {
        "order": order,
        "paid": paid,
        "review": review,
        "approver": nc.state["approver"],
        "items": items,
    }


@golden_signals.update
def approve(approver: str) -> str:
    nc.state["approver"] = approver
    return f"approved by {approver}"


@golden_signals.query
def stage(state: dict) -> str | None:
    return state.get("stage")


@nc.workflow
async def golden_concurrency(n: int) -> dict:
    """Tasks run in parallel with gather, and a race a task wins against a long sleep."""
    squares = await nc.gather(*[square(i) for i in range(n)])
    winner = await nc.race(quick("task"), nc.sleep("1 day"))
    return {"squares": squares, "winner": winner}


@nc.workflow
async def golden_child(base: int) -> int:
    """The child of golden_parent: waits for a signal from its parent."""
    extra = await nc.signal("extra")
    return await add(base, extra)


@nc.workflow
async def golden_parent(base: int) -> dict:
    """Starts a child, signals it, and waits for its result."""
    handle = nc.start_child(golden_child, base * 10)
    handle.signal("extra", 5)
    from_child = await handle
    return {"child": handle.id, "from_child": from_child}


@nc.workflow
async def golden_saga(item: str, amount: Decimal) -> str:
    """A saga whose last step fails: the compensations run in reverse, the run fails."""
    async with nc.Saga() as saga:
        reservation = await reserve(item)
        saga.add(release, reservation)
        payment = await charge(amount)
        saga.add(refund, payment)
        await ship(item)
    return "shipped"


@nc.workflow
async def golden_countdown(n: int, total: int = 0) -> int:
    """Adds n, n-1, ... 1, one continue-as-new run each."""
    total = await add(total, n)
    if n > 1:
        nc.continue_as_new(n - 1, total=total)
    return total


@nc.workflow
async def golden_markers(name: str) -> dict:
    """A patch marker, a side effect, and the deterministic now/random/uuid4."""
    if nc.patched("formal-greeting"):
        greeting = await greet(name, "Good day")
    else:
        greeting = await greet(name, "Hi")
    # The recorder's process id: a replay in another process returns the recorded one.
    recorder_pid = nc.side_effect(os.getpid)
    return {
        "greeting": greeting,
        "recorder_pid": recorder_pid,
        "random": nc.random(),
        "uuid": nc.uuid4(),
        "now": nc.now(),
    }


@nc.workflow
async def golden_payloads(invoice: Invoice, frame, sent: datetime) -> dict:
    """Tagged payloads through input, a task's input and result, a signal and the result."""
    due = await total_due([invoice], frame)
    note = await nc.signal("note")
    return {
        "invoice": invoice,
        "due": due,
        "note": note,
        "priority": Priority.HIGH,
        "sent": sent,
        "labels": frozenset({"paid", "golden"}),
        "pair": (1, "two"),
        "blob": b"\x00\x01golden",
        "by_number": {1: "one", (2, 3): "tuple key"},
        "nan": float("nan"),
        "rows": frame.shape,
    }


@nc.workflow
async def golden_frame_file(rows: int) -> dict:
    """A task's frame result, kept in a DuckDB file (tests/golden/files/), then a signal
    and a task that reads the frame: the file holds the execution open at the signal."""
    frame = await make_frame(rows)
    factor = await nc.signal("factor")
    total = await sum_frame(frame)
    return {"total": total * factor, "rows": len(frame), "last": frame["name"].iloc[-1]}


WORKFLOWS = {
    definition.name: definition
    for definition in (
        golden_tasks,
        golden_timer,
        golden_signals,
        golden_concurrency,
        golden_child,
        golden_parent,
        golden_saga,
        golden_countdown,
        golden_markers,
        golden_payloads,
    )
}
"""The workflows of the JSON golden histories; ``golden_frame_file`` is recorded as a
DuckDB file instead (tests/golden/record_file.py, tests/test_golden_files.py)."""
