"""Build the tutorial notebooks in this folder: write each one, run it, save it with outputs.

Every notebook is defined below as a list of markdown and code cells. This script
writes each one with nbformat, executes it with nbclient in this folder (as nbval
does), and saves it with its outputs, so that ``pytest --nbval notebooks/`` has
outputs to compare against::

    .venv/bin/python notebooks/build_notebooks.py            # all of them
    .venv/bin/python notebooks/build_notebooks.py 03 06      # some (number or name)

Edit the cells here, never the ``.ipynb`` files: a rebuild overwrites them.

Each notebook's first code cell points ``NBCONDUCTOR_DB`` at a new temporary folder
before ``%load_ext nbconductor``, so it starts from an empty history however often it
runs (nbval runs it again in CI, and nbclient and nbval cannot tell the extension the
notebook's name, so its default would be one ``.nbconductor/default.duckdb`` shared by
every notebook here). Its last cell unloads the extension and deletes that folder.
The only varying values left in the outputs (execution ids, timestamps, durations,
the temporary path, timer due times) are rewritten by ``sanitize.cfg`` before nbval
compares them; the one cell whose output is measured durations is marked
``# NBVAL_IGNORE_OUTPUT``.

The saved files are reproducible: cell ids are numbered, no execution timestamps are
recorded, and a rebuild changes nothing but the values ``sanitize.cfg`` rewrites.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
DOCS = "../docs"

Cell = tuple[str, str]  # ("markdown" | "code", source)


def md(*parts: str) -> Cell:
    """A markdown cell: the parts, each dedented and stripped, as paragraphs."""
    return ("markdown", "\n\n".join(textwrap.dedent(part).strip() for part in parts))


def code(text: str) -> Cell:
    """A code cell (the text is dedented and stripped)."""
    return ("code", textwrap.dedent(text).strip())


def fresh_history(stem: str) -> Cell:
    """The first code cell of every notebook: an empty history, then the extension."""
    return code(
        f"""
        import atexit
        import os
        import shutil
        import tempfile

        # A fresh history for this tutorial, deleted when the kernel exits.
        # Leave these lines out in your own notebooks (see above).
        tutorial_folder = tempfile.mkdtemp(prefix="nbconductor-tutorial-")
        atexit.register(shutil.rmtree, tutorial_folder, ignore_errors=True)
        os.environ["NBCONDUCTOR_DB"] = os.path.join(tutorial_folder, "{stem}.duckdb")

        %load_ext nbconductor
        """
    )


FRESH_HISTORY_NOTE = f"""
    The first cell points nbconductor at a **fresh history** for this tutorial: a new,
    empty file in a temporary folder that is deleted when the kernel exits, so that the
    notebook tells the same story each time it runs. In your own notebooks leave those
    lines out: `%load_ext nbconductor` then keeps the history in
    `.nbconductor/<notebook name>.duckdb` beside the notebook, where it survives kernel
    restarts ([Operations]({DOCS}/operations.md#where-the-history-lives)).
"""


def clean_up() -> list[Cell]:
    """The last cells of every notebook: stop the engine, delete the tutorial's history.

    The first cell's ``atexit`` hook does the same when the kernel exits normally, but
    nbval kills its kernels, so the notebook deletes its folder itself.
    """
    return [
        md(
            """
            ## Clean up

            Unloading the extension stops the engine (running tasks get two seconds, the
            history is committed and the file closed). Then the tutorial's temporary
            history can go; in your own notebooks you would keep it, of course.
            """
        ),
        code(
            """
            %unload_ext nbconductor
            shutil.rmtree(tutorial_folder)
            """
        ),
    ]


NOTEBOOKS: dict[str, Callable[[], list[Cell]]] = {}


def notebook(fn: Callable[[], list[Cell]]) -> Callable[[], list[Cell]]:
    """Register a notebook; the function's name, with ``_`` as ``-``, is the file stem."""
    NOTEBOOKS[fn.__name__.lstrip("_").replace("_", "-")] = fn
    return fn


# ======================================================================== 01-quickstart


@notebook
def _01_quickstart() -> list[Cell]:
    return [
        md(
            f"""
            # Quickstart: your first durable workflow

            nbconductor runs **workflows** inside this Jupyter kernel and writes every step
            they take to a history file. Because the history is on disk, a workflow can wait
            for a day, survive a kernel restart and carry on where it stopped.

            In this notebook you will:

            1. load the extension, which starts an engine in the kernel;
            2. write two **tasks** (the functions that do the work) and a **workflow** (the
               code that decides what happens) with the `%%task` and `%%workflow` magics;
            3. start an **execution** and look at it while it runs;
            4. read the **history** it left behind.

            It takes about five minutes. The [tutorial]({DOCS}/tutorial.md) tells the same
            story in plain Python, and [Concepts]({DOCS}/concepts.md) explains the ideas.
            """
        ),
        md(
            """
            ## 1. Load the extension

            `%load_ext nbconductor` starts an engine in a background thread of this kernel
            and registers the magics: `%%task`, `%%workflow` and `%conductor`.
            """,
            FRESH_HISTORY_NOTE,
        ),
        fresh_history("01-quickstart"),
        md(
            """
            The engine is running. Everything you import from nbconductor comes from one
            short module:
            """
        ),
        code(
            """
            import nbconductor as nc

            # Stands in for a data warehouse: units sold per region this week.
            SALES = {"north": [120, 80, 95], "south": [60, 75], "east": [200, 10, 30, 40]}
            """
        ),
        md(
            """
            ## 2. Tasks do the work

            A **task** is an ordinary function that does one piece of work: query a
            database, call an API, train a model. In a `%%task` cell the first line names
            the task, its parameters and its options; the rest of the cell is the body of
            the function.

            Here `--retry max_attempts=3,initial=1s` says what to do when an attempt raises
            (try again after a second, then after two, and give up after three attempts) and
            `--timeout 30s` how long one attempt may take.
            """
        ),
        code(
            """
            %%task fetch_sales(region: str) -> list --retry max_attempts=3,initial=1s --timeout 30s
            print(f"fetching sales for {region}")
            return SALES[region]
            """
        ),
        md(
            """
            A plain decorated function works just as well, and is handy when the task is
            short:
            """
        ),
        code(
            """
            @nc.task
            def publish(totals: dict) -> str:
                best = max(totals, key=totals.get)
                return f"{sum(totals.values())} units sold; best region: {best}"
            """
        ),
        md(
            """
            Called outside a workflow, a task is simply the function, which makes it easy to
            try:
            """
        ),
        code(
            """
            fetch_sales("south")
            """
        ),
        md(
            f"""
            ## 3. A workflow decides what happens

            A **workflow** is the body of an `async def`: it calls tasks, waits, and decides
            what to do next. Each `await` of a task or a timer is a step that nbconductor
            records in the history.

            - `await fetch_sales(region)` does not run the function right here: it asks the
              engine to run it (on a worker thread, with its retries and timeout) and waits
              for the result.
            - `nc.sleep("2s")` is a **durable timer**: its due time is in the history, so
              the wait survives a restart. Real workflows sleep for hours or days.
            - `nc.progress(...)` and `nc.state` tell whoever watches the execution how far
              it got.

            Workflow code is run again from the start when an execution resumes after a
            restart, so it must make the same decisions every time: it leaves I/O to tasks
            and reads the clock with `nc.now()`. The `%%workflow` magic warns when a cell
            breaks [these rules]({DOCS}/concepts.md#the-determinism-rules).
            """
        ),
        code(
            """
            %%workflow weekly_report(regions: list) -> dict --timeout 1h
            totals = {}
            for done, region in enumerate(regions):
                nc.progress(done / len(regions), f"fetching {region}")
                totals[region] = sum(await fetch_sales(region))
            nc.state["totals"] = totals

            nc.progress(1.0, "waiting for late corrections")
            await nc.sleep("2s")

            return {"totals": totals, "summary": await publish(totals)}
            """
        ),
        md(
            """
            The cell bound the name `weekly_report` to the workflow's definition.

            ## 4. Start an execution

            `weekly_report.start(...)` records a new **execution** and returns a **handle**
            to it at once; the execution runs in the background while you carry on. The
            `id` is optional. With one, starting the same id again returns the existing
            execution instead of starting a second one.
            """
        ),
        code(
            """
            run = weekly_report.start(["north", "south", "east"], id="week-47")
            run
            """
        ),
        md(
            f"""
            ## 5. Watch it

            Displaying a handle shows the execution: its workflow, id and status. In a live
            notebook the view follows the execution as it runs, with its progress and its
            steps ([the reference]({DOCS}/reference.md#widgets) lists the views).

            The handle also answers questions. The three fetches take a few milliseconds,
            then the workflow waits on its timer. Here we wait until it got there (in a
            notebook of your own you would just look), then ask for its progress and its
            state:
            """
        ),
        code(
            """
            from nbconductor.testing import wait_for

            wait_for(lambda: run.progress.get("message") == "waiting for late corrections")
            run.progress
            """
        ),
        code(
            """
            run.state
            """
        ),
        md(
            """
            To wait for the result, `await` the handle. The wait does not block the
            kernel: other cells, and the buttons of the views, keep working meanwhile. (The
            blocking `run.result(timeout=...)` is for scripts.)
            """
        ),
        code(
            """
            result = await run
            result
            """
        ),
        code(
            """
            run
            """
        ),
        md(
            """
            Starting the same id again does not run anything: it hands back the execution
            that already exists.
            """
        ),
        code(
            """
            again = weekly_report.start(["north", "south", "east"], id="week-47")
            await again  # the result of week-47, at once
            """
        ),
        md(
            """
            ## 6. Read its history

            The `%conductor` magic looks at and controls executions. `list` shows them,
            newest first:
            """
        ),
        code(
            """
            %conductor list
            """
        ),
        md(
            """
            `show` describes one execution: its input, its result, and what its tasks
            printed (task output goes to the execution's log, not to whichever cell
            happens to be running):
            """
        ),
        code(
            """
            %conductor show week-47
            """
        ),
        md(
            """
            `history` lists the recorded **events**: the execution started, each task was
            scheduled and completed, the timer started and fired, the execution completed.
            This list is what the engine replays to rebuild an execution after a restart.
            """
        ),
        code(
            """
            %conductor history week-47
            """
        ),
        md(
            """
            The same events are available in Python, for your own checks and reports:
            """
        ),
        code(
            """
            for event in run.history():
                print(f"{event.seq:>2}  {event.kind.value:<18} {event.name or ''}")
            """
        ),
        md(
            """
            And since the history is a DuckDB database, SQL works on it too
            ([07-history-analytics](07-history-analytics.ipynb) goes further):
            """
        ),
        code(
            """
            %conductor sql SELECT name AS task, count(*) AS runs FROM events WHERE kind = 'TaskCompleted' GROUP BY name ORDER BY name
            """
        ),
        md(
            f"""
            ## Where next

            - [02-human-in-the-loop](02-human-in-the-loop.ipynb): wait for a person's
              decision, with a timeout.
            - [03-order-saga](03-order-saga.ipynb): retries, errors that are not worth
              retrying, and undoing completed steps.
            - [04-parallel-and-children](04-parallel-and-children.ipynb): run steps at the
              same time, race them, split work into child workflows.
            - [05-schedules](05-schedules.ipynb): start workflows on a timetable.
            - [06-recovery](06-recovery.ipynb): stop the engine mid-flight and watch the
              execution carry on.
            - [07-history-analytics](07-history-analytics.ipynb): SQL and a chart over the
              history.

            Every magic and function is in the [reference]({DOCS}/reference.md).
            """
        ),
    ]


# ================================================================== 02-human-in-the-loop


@notebook
def _02_human_in_the_loop() -> list[Cell]:
    return [
        md(
            f"""
            # Human in the loop: wait for an approval, with a deadline

            Many processes stop to ask a person: a manager approves a discount, an editor
            signs off an article, a customer confirms an order. The person may answer in a
            minute or next week, and the kernel may restart in between. nbconductor waits
            for them with a **signal**: a named message, recorded in the history like
            every other step, so nothing is lost while the workflow waits.

            In this notebook you will:

            1. write a workflow that drafts an offer and waits for a manager's `approve`
               signal, at most two days;
            2. send the signal from code, from the `%conductor` magic and (in a live
               notebook) from the button in the execution's view;
            3. watch the deadline run out and the workflow take its other branch.

            The how-to guide on [signals]({DOCS}/howto/signals.md) covers more: streams of
            signals, updates that return a value, queries and conditions.
            """
        ),
        md(
            """
            ## Set up

            Load the extension, as in [01-quickstart](01-quickstart.ipynb).
            """,
            FRESH_HISTORY_NOTE,
        ),
        fresh_history("02-human-in-the-loop"),
        md(
            """
            Three tasks do the work: draft the offer, send it, withdraw it.
            """
        ),
        code(
            """
            import nbconductor as nc

            LIST_PRICE = 1000.0
            """
        ),
        code(
            """
            %%task draft_offer(customer: str, discount: float) -> dict
            return {"customer": customer, "discount": discount, "price": LIST_PRICE * (1 - discount)}
            """
        ),
        code(
            """
            %%task send_offer(offer: dict) -> str
            return f"offer sent to {offer['customer']}: {offer['price']:.2f} EUR"
            """
        ),
        code(
            """
            %%task withdraw_offer(offer: dict, reason: str) -> str
            return f"offer to {offer['customer']} withdrawn: {reason}"
            """
        ),
        md(
            """
            ## A workflow that waits for a decision

            `await nc.signal("approve", timeout=patience)` waits for the next signal called
            `approve` and returns its payload, or `None` when the time runs out first. The
            timeout is a durable timer: its due time is in the history, so a restart does
            not reset the clock.

            `--signals approve` declares the signal the workflow expects, so that the
            execution's view can offer a button for it. `nc.state` is a small dictionary
            the workflow shares with whoever watches it.
            """
        ),
        code(
            """
            %%workflow discount_approval(customer: str, discount: float, patience: str = "2 days") -> str --signals approve
            offer = await draft_offer(customer, discount)
            nc.state["offer"] = offer
            nc.state["stage"] = "waiting for a manager"

            decision = await nc.signal("approve", timeout=patience)

            if decision is None:
                return await withdraw_offer(offer, f"no answer within {patience}")
            nc.state["stage"] = f"decided by {decision['by']}"
            if not decision["ok"]:
                return await withdraw_offer(offer, f"rejected by {decision['by']}")
            return await send_offer(offer)
            """
        ),
        md(
            """
            ## Start it and let it wait

            ACME asks for 15 % off. The workflow drafts the offer in a moment, then waits;
            it may wait for two days, costing nothing but a row in the history.
            """
        ),
        code(
            """
            acme = discount_approval.start("ACME", 0.15, id="offer-acme")
            acme
            """
        ),
        md(
            """
            `acme.waiting_for` names the signals the execution is waiting for right now.
            Here we wait until the draft is done and the workflow waits (in a notebook of
            your own you would just look at the view):
            """
        ),
        code(
            """
            from nbconductor.testing import wait_for

            wait_for(lambda: acme.waiting_for == ["approve"])
            acme.waiting_for, acme.state
            """
        ),
        md(
            """
            `%conductor show` says the same, with the execution's input:
            """
        ),
        code(
            """
            %conductor show offer-acme
            """
        ),
        md(
            """
            ## Send the signal

            **In a live notebook**, the execution's view shows a button for each signal
            the workflow declares or waits for, with a field for the payload as JSON.
            Clicking `approve` with `{"ok": true, "by": "you"}` does what the next cell
            does. (The kernel handles a click between cells, or while a cell *awaits*: wait
            with `await acme`, not with the blocking `acme.result()`, while someone may
            click.)

            From code, the handle sends it. `signal()` returns once the signal is recorded
            in the history, so from then on it survives a crash:
            """
        ),
        code(
            """
            acme.signal("approve", {"ok": True, "by": "ann"})
            await acme
            """
        ),
        md(
            """
            The history shows what happened: the signal's timeout started as a timer, the
            signal arrived, and the timer was cancelled.
            """
        ),
        code(
            """
            for event in acme.history():
                print(f"{event.seq:>2}  {event.kind.value:<18} {event.name or ''}")
            """
        ),
        md(
            """
            ## From the magic, and before the workflow asks

            `%conductor signal ID NAME PAYLOAD` does the same from a cell, with the
            payload as JSON or a Python literal. A signal may also arrive *before* the
            workflow waits for it: it is kept in the history and delivered when the
            workflow gets there. Globex's rejection is sent the moment the execution starts,
            without waiting for the workflow to ask:
            """
        ),
        code(
            """
            globex = discount_approval.start("Globex", 0.40, id="offer-globex")
            %conductor signal offer-globex approve {"ok": false, "by": "bob"}
            """
        ),
        code(
            """
            await globex
            """
        ),
        md(
            """
            ## When nobody answers

            Initech's request lands on a holiday. To see the deadline run out without
            waiting two days, this execution gets one second of patience:
            """
        ),
        code(
            """
            initech = discount_approval.start("Initech", 0.30, patience="1 second", id="offer-initech")
            await initech
            """
        ),
        md(
            """
            This time the timer fired and no signal was received:
            """
        ),
        code(
            """
            [event.kind.value for event in initech.history()]
            """
        ),
        md(
            """
            A decision that comes too late is refused: the execution has closed, and a
            signal never reopens it.
            """
        ),
        code(
            """
            try:
                initech.signal("approve", {"ok": True, "by": "carol"})
            except nc.ExecutionClosed as error:
                print(error)
            """
        ),
        md(
            """
            One detail to remember: `nc.signal(..., timeout=...)` returns `None` when the
            time runs out, and a signal sent *without* a payload delivers `None` too. When
            a workflow waits with a timeout, send a payload (`True`, a dict) so that the
            two cannot be confused.

            Here are the three offers:
            """
        ),
        code(
            """
            %conductor list
            """
        ),
        md(
            f"""
            ## Where next

            - Real deadlines are hours or days; they survive restarts like any durable
              timer. [06-recovery](06-recovery.ipynb) shows an execution carrying on after
              its engine stopped.
            - [Signals]({DOCS}/howto/signals.md): wait for one of several signals, receive
              a stream of them, answer queries, accept updates that return a value.
            - [03-order-saga](03-order-saga.ipynb): undo completed steps when a later one
              fails or the order is cancelled.
            """
        ),
    ]


# ========================================================================= 03-order-saga


@notebook
def _03_order_saga() -> list[Cell]:
    return [
        md(
            f"""
            # An order saga: retries, final errors and compensation

            An order touches several systems: the payment provider charges the card, the
            warehouse reserves the items, the carrier books a shipment, the mail server
            sends the confirmation. None of them can be rolled back like a database
            transaction: once the card is charged, it is charged. When a later step fails,
            the earlier ones must be **undone** by a compensating action (refund the
            payment, release the items). This pattern is called a **saga**.

            In this notebook you will:

            1. give each step a retry policy, so that a flaky payment gateway is retried;
            2. mark errors that no retry will fix as **non-retryable**, so they fail at once;
            3. use `nc.Saga` to run the compensations, newest first, when a step fails;
            4. cancel an order halfway and watch the same compensations run.

            The how-to guides on [sagas]({DOCS}/howto/sagas.md) and on
            [timeouts and retries]({DOCS}/howto/timeouts-and-retries.md) have every
            option.
            """
        ),
        md(
            """
            ## Set up

            Load the extension, as in [01-quickstart](01-quickstart.ipynb).
            """,
            FRESH_HISTORY_NOTE,
        ),
        fresh_history("03-order-saga"),
        md(
            """
            The outside world is simulated by three Python objects: the stock of the
            warehouse, a gateway that times out a given number of times per order, and a
            ledger that records every effect a task had, in order.
            """
        ),
        code(
            """
            import nbconductor as nc

            STOCK = {"lamp": 5, "chair": 0, "desk": 2}
            GATEWAY_TIMEOUTS = {"A-1": 2}  # the gateway times out twice on order A-1
            LEDGER = []  # what the outside world saw, in order


            def ledger(order_id: str) -> None:
                for line in LEDGER:
                    if order_id in line:
                        print(line)


            class OutOfStock(Exception):
                pass
            """
        ),
        md(
            """
            ## The steps and their undo

            Each step is a task with its own retry policy. `--retry initial=0.2s,...`
            waits 0.2 s after the first failure, then twice as long each time (real
            policies start at a second or more).

            Not every error is worth a retry. `non_retryable=OutOfStock` makes that error
            fail the task at once; a task can also say so itself by raising
            `nc.ApplicationError(..., non_retryable=True)`, as `create_shipment` does when
            the carrier refuses an address.
            """
        ),
        code(
            """
            %%task charge_payment(order_id: str, amount: float) -> str --retry initial=0.2s,max_attempts=5
            if GATEWAY_TIMEOUTS.get(order_id, 0) > 0:
                GATEWAY_TIMEOUTS[order_id] -= 1
                raise ConnectionError("the payment gateway timed out")
            LEDGER.append(f"charged {amount:.2f} EUR for {order_id}")
            return f"payment-{order_id}"
            """
        ),
        code(
            """
            %%task reserve_inventory(order_id: str, sku: str, qty: int) -> dict --retry initial=0.2s,max_attempts=5,non_retryable=OutOfStock
            if STOCK[sku] < qty:
                raise OutOfStock(f"{qty} {sku} ordered, {STOCK[sku]} in stock")
            STOCK[sku] -= qty
            LEDGER.append(f"reserved {qty} {sku} for {order_id}")
            return {"order_id": order_id, "sku": sku, "qty": qty}
            """
        ),
        code(
            """
            %%task create_shipment(order_id: str, address: str) -> str --retry initial=0.2s,max_attempts=5
            if not address.strip():
                raise nc.ApplicationError("the carrier refused an empty address", non_retryable=True)
            LEDGER.append(f"shipment booked for {order_id}")
            return f"shipment-{order_id}"
            """
        ),
        code(
            """
            %%task send_confirmation(order_id: str, shipment: str) -> str --retry initial=0.2s,max_attempts=5
            LEDGER.append(f"confirmation sent for {order_id}")
            return f"confirmed {order_id}, tracking {shipment}"
            """
        ),
        md(
            """
            The compensations are tasks too, recorded in the history like the steps they
            undo. They may run more than once (tasks run at least once), so each one must
            be harmless to repeat: refunding a payment twice must refund it once. Here each
            checks the ledger first; a real one would pass an idempotency key to the
            provider.
            """
        ),
        code(
            """
            %%task refund_payment(payment: str) --retry initial=0.2s,max_attempts=10
            if f"refunded {payment}" not in LEDGER:
                LEDGER.append(f"refunded {payment}")
            """
        ),
        code(
            """
            %%task release_inventory(reservation: dict) --retry initial=0.2s,max_attempts=10
            done = f"released {reservation['qty']} {reservation['sku']} for {reservation['order_id']}"
            if done not in LEDGER:
                STOCK[reservation["sku"]] += reservation["qty"]
                LEDGER.append(done)
            """
        ),
        code(
            """
            %%task cancel_shipment(shipment: str) --retry initial=0.2s,max_attempts=10
            if f"cancelled {shipment}" not in LEDGER:
                LEDGER.append(f"cancelled {shipment}")
            """
        ),
        md(
            """
            ## The order process

            Inside `async with nc.Saga() as saga:`, each step that succeeded registers its
            undo with `saga.add(...)` right away. When an exception leaves the block (a
            step failed for good, or the execution was cancelled), the saga awaits the
            registered compensations in reverse order, then lets the exception go on.

            Between reserving and shipping, the workflow waits for the warehouse to say
            the parcel is `packed` (a signal, see
            [02-human-in-the-loop](02-human-in-the-loop.ipynb)). The confirmation e-mail
            comes after the saga block on purpose: once the parcel has left, a failed
            e-mail is no reason to refund the customer.
            """
        ),
        code(
            """
            %%workflow order_process(order: dict) -> dict
            async with nc.Saga() as saga:
                nc.state["stage"] = "payment"
                payment = await charge_payment(order["id"], order["amount"])
                saga.add(refund_payment, payment)

                nc.state["stage"] = "inventory"
                reservation = await reserve_inventory(order["id"], order["sku"], order["qty"])
                saga.add(release_inventory, reservation)

                nc.state["stage"] = "waiting for the warehouse"
                await nc.signal("packed")

                nc.state["stage"] = "shipping"
                shipment = await create_shipment(order["id"], order["address"])
                saga.add(cancel_shipment, shipment)

            nc.state["stage"] = "confirmation"
            return {"payment": payment, "confirmation": await send_confirmation(order["id"], shipment)}
            """
        ),
        md(
            """
            A small helper waits for an order and says how it ended; a failed, cancelled or
            terminated execution raises `nc.ExecutionFailed` at the `await`:
            """
        ),
        code(
            """
            async def outcome(run):
                try:
                    return await run
                except nc.ExecutionFailed as failed:
                    print(failed)
                    return failed.status
            """
        ),
        md(
            """
            ## Order A-1: a flaky gateway, retried

            The gateway times out twice on this order. Each failed attempt is recorded and
            retried after its wait; the workflow sees none of it. The warehouse's `packed`
            signal is sent right away: it waits in the history until the workflow asks for
            it.
            """
        ),
        code(
            """
            a1 = order_process.start(
                {"id": "A-1", "amount": 59.90, "sku": "lamp", "qty": 2, "address": "1 Main St"}, id="A-1"
            )
            a1.signal("packed")
            await outcome(a1)
            """
        ),
        code(
            """
            ledger("A-1")
            """
        ),
        md(
            """
            The history keeps each failed attempt, with its error and whether it was final:
            """
        ),
        code(
            """
            import json

            for event in a1.history():
                if event.name != "charge_payment" or event.kind.value == "TaskScheduled":
                    continue
                data = json.loads(event.data)
                if event.kind.value == "TaskCompleted":
                    print(f"attempt {event.attempt}: completed, {data['result']!r}")
                else:
                    error, then = data["error"], "final" if data["final"] else "retried"
                    print(f"attempt {event.attempt}: {error['type']}: {error['message']} ({then})")
            """
        ),
        md(
            """
            ## Order A-2: out of stock, nothing to retry

            There are no chairs. `OutOfStock` is non-retryable, so the task fails on its
            first attempt, the exception leaves the saga block, and the saga refunds the
            payment, the only step that had succeeded. The execution ends `Failed`.
            """
        ),
        code(
            """
            a2 = order_process.start(
                {"id": "A-2", "amount": 120.00, "sku": "chair", "qty": 1, "address": "2 Elm St"}, id="A-2"
            )
            await outcome(a2)
            """
        ),
        code(
            """
            ledger("A-2")
            """
        ),
        md(
            """
            ## Order A-3: the carrier refuses, undo in reverse order

            This order is paid, reserved and packed, then the carrier refuses its empty
            address. The saga undoes the two steps that succeeded, newest first: the
            reservation is released, then the payment is refunded.
            """
        ),
        code(
            """
            a3 = order_process.start(
                {"id": "A-3", "amount": 340.00, "sku": "desk", "qty": 1, "address": " "}, id="A-3"
            )
            a3.signal("packed")
            await outcome(a3)
            """
        ),
        code(
            """
            ledger("A-3")
            """
        ),
        md(
            """
            ## Order A-4: cancelled while it waits

            The customer changes their mind while the warehouse is packing. Cancelling
            raises `asyncio.CancelledError` at the workflow's current `await` (here, the
            wait for `packed`). It leaves the saga block like any other exception, so the
            same compensations run, and the execution ends `Cancelled`.

            (Terminating instead, with `%conductor terminate` or `run.terminate()`, would
            end the execution at once and run no compensation: cancel when there is
            something to undo.)
            """
        ),
        code(
            """
            from nbconductor.testing import wait_for

            a4 = order_process.start(
                {"id": "A-4", "amount": 29.95, "sku": "lamp", "qty": 1, "address": "4 Oak St"}, id="A-4"
            )
            wait_for(lambda: a4.waiting_for == ["packed"])  # in your notebook you would just look
            a4.state
            """
        ),
        code(
            """
            %conductor cancel A-4
            """
        ),
        code(
            """
            await outcome(a4)
            """
        ),
        code(
            """
            ledger("A-4")
            """
        ),
        md(
            """
            ## The end of the day

            Every reservation of a failed or cancelled order was released: only A-1's two
            lamps left the stock.
            """
        ),
        code(
            """
            STOCK
            """
        ),
        code(
            """
            %conductor list
            """
        ),
        md(
            f"""
            ## Take-aways

            - Give every task a retry policy that **ends** (`max_attempts`): the default
              retries forever, which hides bugs.
            - Mark errors that a retry cannot fix as **non-retryable**, by type
              (`non_retryable=...`) or by raising `nc.ApplicationError(...,
              non_retryable=True)`.
            - Register each compensation **right after** its step succeeds, and make
              compensations idempotent.
            - **Cancel** runs the compensations; **terminate** does not.

            [Sagas]({DOCS}/howto/sagas.md) covers compensations that fail themselves and
            running compensations in parallel; next,
            [04-parallel-and-children](04-parallel-and-children.ipynb) runs steps at the
            same time.
            """
        ),
    ]


# ============================================================== 04-parallel-and-children


@notebook
def _04_parallel_and_children() -> list[Cell]:
    return [
        md(
            f"""
            # Parallel steps, races, child workflows and long loops

            A workflow does not have to take one step at a time. In this notebook you
            will:

            1. **fan out** to many tasks at once and **fan in** their results with
               `nc.gather`;
            2. **race** tasks against each other and against a **deadline**;
            3. split a big job into **child workflows**, each with its own history;
            4. keep a long-running loop's history short with **continue-as-new**.

            All of these are durable: the engine records which steps started and which
            finished, so after a restart it knows exactly which ones it is still waiting
            for. [Concepts]({DOCS}/concepts.md#workflows-and-tasks) introduces them.
            """
        ),
        md(
            """
            ## Set up

            Load the extension, as in [01-quickstart](01-quickstart.ipynb).
            """,
            FRESH_HISTORY_NOTE,
        ),
        fresh_history("04-parallel-and-children"),
        code(
            """
            import asyncio
            import threading
            import time

            import nbconductor as nc
            """
        ),
        md(
            """
            ## 1. Fan out, fan in

            A task that makes a thumbnail takes half a second. It also counts how many
            thumbnails are being made at the same moment, so we can see the fan-out
            happen.
            """
        ),
        code(
            """
            LOCK = threading.Lock()
            BUSY = {"now": 0, "peak": 0}
            """
        ),
        code(
            """
            %%task make_thumbnail(image: str) -> str
            with LOCK:
                BUSY["now"] += 1
                BUSY["peak"] = max(BUSY["peak"], BUSY["now"])
            time.sleep(0.5)  # the actual resizing
            with LOCK:
                BUSY["now"] -= 1
            return f"thumb-{image}"
            """
        ),
        md(
            """
            Calling a task inside a workflow returns an awaitable without waiting for it.
            `nc.gather(...)` schedules them all at once and returns their results **in
            the order of its arguments**, whatever order they finish in. (Plain
            `asyncio.gather`, `asyncio.wait` and `asyncio.create_task` work too: the
            workflow's event loop makes their order deterministic.)
            """
        ),
        code(
            """
            %%workflow thumbnails(images: list) -> list
            return await nc.gather(*[make_thumbnail(image) for image in images])
            """
        ),
        code(
            """
            images = [f"photo-{n}.jpg" for n in range(1, 9)]
            await thumbnails.start(images, id="thumbnails-1")
            """
        ),
        md(
            """
            Eight tasks of half a second each, and all eight ran at the same time:
            """
        ),
        code(
            """
            BUSY["peak"]
            """
        ),
        md(
            """
            Sync tasks run on the engine's thread pool (32 threads by default, see
            [Scaling out](../docs/howto/scaling-out.md) for more). If one of the tasks
            fails for good, `gather` raises its `nc.TaskFailed`; with
            `return_exceptions=True` it returns the errors in place of the results instead.

            ## 2. Race, with a deadline

            Two suppliers are asked for a quote; the first answer wins. A quote takes as
            long as the supplier takes (`seconds`); the task checks `nc.cancelled()` while
            it waits, so that it stops as soon as nobody wants its answer any more.
            """
        ),
        code(
            """
            %%task ask_supplier(supplier: str, seconds: float, price: float) -> dict
            waited = 0.0
            while waited < seconds:
                if nc.cancelled():  # the race was decided without us
                    return {}
                time.sleep(0.05)
                waited += 0.05
            return {"supplier": supplier, "price": price}
            """
        ),
        md(
            """
            `nc.race(...)` returns the result of the first awaitable to finish and cancels
            the others. Wrapped in `asyncio.wait_for(..., timeout=deadline)` it also has a
            deadline, a durable timer like every wait in a workflow; when the deadline
            passes first, the workflow gets `asyncio.TimeoutError` and falls back on the
            list price.
            """
        ),
        code(
            """
            %%workflow best_quote(suppliers: list, deadline: float) -> dict
            quotes = [ask_supplier(name, seconds, price) for name, seconds, price in suppliers]
            try:
                return await asyncio.wait_for(nc.race(*quotes), timeout=deadline)
            except asyncio.TimeoutError:
                return {"supplier": "list price", "price": 100.0}
            """
        ),
        md(
            """
            ACME answers in 0.2 s, Globex would take 1.5 s, and the deadline is one second:
            ACME wins, even though Globex would have been cheaper. That is what a race is
            for: the first answer, not the best one.
            """
        ),
        code(
            """
            quick = best_quote.start([["acme", 0.2, 95.0], ["globex", 1.5, 90.0]], 1.0, id="quote-1")
            await quick
            """
        ),
        md(
            """
            The history shows both quotes scheduled, ACME's completed, Globex's cancelled,
            and the deadline's timer cancelled too:
            """
        ),
        code(
            """
            for event in quick.history():
                print(f"{event.seq:>2}  {event.kind.value:<20} {event.name or ''}")
            """
        ),
        md(
            """
            Now both suppliers are slow and the deadline is half a second: the timer fires
            first and the workflow returns the list price.
            """
        ),
        code(
            """
            slow = best_quote.start([["globex", 1.5, 90.0], ["initech", 2.0, 85.0]], 0.5, id="quote-2")
            await slow
            """
        ),
        md(
            """
            ## 3. Child workflows

            A big job reads better, and records better, as several workflows: a parent
            that coordinates, and **children** that each do one part with their own
            history, status and retries. Inside a workflow, calling another workflow starts
            it as a child and waits for its result (`nc.child(workflow, ...)` says the same
            explicitly; `nc.start_child` returns a handle at once, to signal or cancel the
            child).
            """
        ),
        code(
            """
            %%task write_description(sku: str) -> str
            return f"A fine {sku}."
            """
        ),
        code(
            """
            %%workflow publish_product(sku: str) -> dict
            thumbnail, description = await nc.gather(make_thumbnail(f"{sku}.jpg"), write_description(sku))
            return {"sku": sku, "thumbnail": thumbnail, "description": description}
            """
        ),
        code(
            """
            %%workflow publish_catalogue(skus: list) -> list
            return await nc.gather(*[publish_product(sku) for sku in skus])
            """
        ),
        code(
            """
            await publish_catalogue.start(["lamp", "chair", "desk"], id="catalogue")
            """
        ),
        md(
            """
            Each child is an execution of its own, named after its parent (`catalogue/1`,
            `catalogue/2`, ...) and linked to it by `parent_id`:
            """
        ),
        code(
            """
            %%conductor sql
            SELECT id, workflow, status, parent_id FROM executions
            WHERE id LIKE 'catalogue%' ORDER BY id
            """
        ),
        md(
            """
            A child that fails raises `nc.ChildFailed` in the parent, which can catch it
            like a failed task. When the parent closes first, its open children are
            terminated; `nc.start_child(..., parent_close="abandon")` lets them run on.

            ## 4. A long loop: continue-as-new

            A workflow that loops for ever (drain a queue, poll an inbox, run a nightly
            job for years) would grow an endless history, and a restart would replay all of
            it. Instead, after each batch it calls `nc.continue_as_new(...)`: this run ends,
            and a fresh run of the same workflow starts with the new arguments and an empty
            history.
            """
        ),
        code(
            """
            QUEUE = [f"message {n}" for n in range(1, 24)]  # 23 messages waiting
            """
        ),
        code(
            """
            %%task fetch_batch(cursor: int, size: int) -> list
            return QUEUE[cursor : cursor + size]
            """
        ),
        code(
            """
            %%task handle_message(message: str) -> str
            return message.upper()
            """
        ),
        code(
            """
            %%workflow drain_queue(cursor: int = 0, handled: int = 0) -> int
            batch = await fetch_batch(cursor, 5)
            await nc.gather(*[handle_message(message) for message in batch])
            if len(batch) < 5:  # the queue is empty: the chain ends here
                return handled + len(batch)
            nc.continue_as_new(cursor + len(batch), handled + len(batch))
            """
        ),
        md(
            """
            Awaiting the handle follows the chain to its last run and returns that run's
            result:
            """
        ),
        code(
            """
            drain = drain_queue.start(id="drain")
            await drain
            """
        ),
        md(
            """
            Five runs handled the 23 messages, five at a time. Each run after the first
            has the id of the first plus `#2`, `#3`, ...; each one ended `ContinuedAsNew`
            except the last. However long the queue, no run has more than 14 events:
            """
        ),
        code(
            """
            %%conductor sql
            SELECT x.id, x.status, x.input, count(*) AS events
            FROM executions x JOIN events e ON e.execution_id = x.id
            WHERE x.workflow = 'drain_queue'
            GROUP BY x.id, x.status, x.input, x.created_at
            ORDER BY x.created_at
            """
        ),
        md(
            f"""
            ## Where next

            - [05-schedules](05-schedules.ipynb) starts workflows on a timetable.
            - [06-recovery](06-recovery.ipynb) shows that everything above survives an
              engine that stops halfway.
            - [Signals]({DOCS}/howto/signals.md#signal-a-child-workflow) shows a parent
              signalling its child; [Timeouts and
              retries]({DOCS}/howto/timeouts-and-retries.md#bound-a-workflow-in-time)
              covers deadlines in depth.
            """
        ),
    ]


# ========================================================================== 05-schedules


@notebook
def _05_schedules() -> list[Cell]:
    return [
        md(
            f"""
            # Schedules: workflows on a timetable

            A **schedule** starts a workflow at set times: on a cron expression read in a
            time zone ("09:00 Paris time, Monday to Friday"), or every N seconds. The
            schedule lives in the history file next to the executions it starts, and each
            fire starts an ordinary execution you can watch, signal or cancel.

            In this notebook you will:

            1. create a **cron** schedule and read its next fires;
            2. see what the **overlap** policies do when a fire is due while the previous
               run is still busy;
            3. see what the **catch-up** policies do after the kernel was closed for a
               while;
            4. **pause** and **resume** a schedule, and look at them all in the
               **schedules view**.

            The exact rules (cron syntax, daylight saving time, every policy) are in
            [Schedules]({DOCS}/schedules.md); the [how-to guide]({DOCS}/howto/schedules.md)
            walks through a complete example.
            """
        ),
        md(
            """
            ## Set up

            Load the extension, as in [01-quickstart](01-quickstart.ipynb).
            """,
            FRESH_HISTORY_NOTE,
        ),
        fresh_history("05-schedules"),
        md(
            """
            Schedules belong to the engine: `nc.engine().schedules`.
            """
        ),
        code(
            """
            import asyncio
            from datetime import datetime, timedelta, timezone

            import nbconductor as nc

            engine = nc.engine()
            """
        ),
        md(
            """
            ## 1. A cron schedule

            The morning report runs at 09:00 Paris time on weekdays. Cron expressions have
            five fields (minute, hour, day of month, month, day of week) and are read in
            the schedule's `timezone`, daylight saving time included.
            """
        ),
        code(
            """
            %%task build_report(region: str) -> str
            return f"report for {region}"
            """
        ),
        code(
            """
            %%workflow morning_report(region: str) -> str
            return await build_report(region)
            """
        ),
        code(
            """
            morning = engine.schedules.create(
                "morning-eu",
                morning_report,
                cron="0 9 * * MON-FRI",
                timezone="Europe/Paris",
                args=["eu"],
                note="for the 9 o'clock meeting",
            )
            morning.spec.cron, morning.spec.timezone, morning.spec.overlap, morning.spec.catchup
            """
        ),
        md(
            """
            `describe` lists the next fires. Each fire starts an execution whose id is the
            schedule's id and the fire's time in UTC, so a fire repeated after a crash finds
            its execution already there and never runs twice. (The dates depend on when you
            run this notebook; the local time does not.)
            """
        ),
        code(
            """
            for fire in engine.schedules.describe("morning-eu", n=5)["upcoming"]:
                local = datetime.fromisoformat(fire["local"])
                print(f"{fire['execution_id']}   ({local:%H:%M} in Paris)")
            """
        ),
        md(
            """
            It also explains its policies in words:
            """
        ),
        code(
            """
            print(engine.schedules.describe("morning-eu")["explanation"])
            """
        ),
        md(
            """
            No need to wait for 09:00 to try it: `trigger_now` fires it once, now.
            """
        ),
        code(
            """
            await engine.schedules.trigger_now("morning-eu")
            """
        ),
        md(
            """
            ## 2. When runs overlap

            A fire is due, but the schedule's previous run is still open. The `overlap`
            policy decides:

            | `overlap` | the new fire |
            |---|---|
            | `skip` (default) | is skipped |
            | `buffer_one` | waits for the open run to close; at most one waits, later ones are skipped |
            | `buffer_all` | waits, however many there are |
            | `cancel_other` | cancels the open run, then starts |
            | `terminate_other` | terminates the open run, then starts |
            | `allow_all` | starts anyway |

            To see three of them side by side, here is an inventory sync that stays open
            until it is told it is `done`, and three schedules that fire it every second,
            three times each, starting two seconds from now:
            """
        ),
        code(
            """
            %%workflow sync_inventory(policy: str) -> str
            await nc.signal("done")
            return f"synced ({policy})"
            """
        ),
        code(
            """
            SYNCS = ["sync-skip", "sync-buffer-one", "sync-allow-all"]
            first = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=2)
            last = first + timedelta(seconds=2)  # fires at first, first + 1 s and first + 2 s

            for policy in ["skip", "buffer_one", "allow_all"]:
                engine.schedules.create(
                    f"sync-{policy.replace('_', '-')}",
                    sync_inventory,
                    every="1s",
                    args=[policy],
                    overlap=policy,
                    start_at=first,
                    end_at=last,
                )
            """
        ),
        md(
            """
            Wait until the three fires are past (`next_fire` is `None` once a schedule has
            no fire left), then look at the schedules with `%conductor schedules`, the
            schedules view:
            """
        ),
        code(
            """
            while any(engine.schedules.get(sync).next_fire for sync in SYNCS):
                await asyncio.sleep(0.1)

            %conductor schedules
            """
        ),
        md(
            """
            - `sync-skip` started its first fire and skipped the other two: one run is open.
            - `sync-buffer-one` started its first fire, kept the second waiting ("1 waiting
              to start"), and skipped the third.
            - `sync-allow-all` started all three: three runs are open at once.
            """
        ),
        code(
            """
            for sync in SYNCS:
                info = engine.schedules.get(sync)
                print(f"{sync:<16} open: {len(info.open_runs)}  waiting to start: {len(info.buffered)}")
            """
        ),
        md(
            """
            Finish the open syncs. As soon as `sync-buffer-one`'s run closes, its waiting
            fire starts:
            """
        ),
        code(
            """
            from nbconductor.testing import wait_for

            for sync in SYNCS:
                for run_id in engine.schedules.get(sync).open_runs:
                    engine.signal(run_id, "done")

            wait_for(lambda: not engine.schedules.get("sync-buffer-one").buffered)
            buffered_run = engine.get(engine.schedules.get("sync-buffer-one").open_runs[0])
            buffered_run
            """
        ),
        code(
            """
            buffered_run.signal("done")
            await buffered_run
            """
        ),
        md(
            f"""
            ## 3. After downtime: catch-up

            A schedule fires only while an engine holds its history file, that is while
            the notebook's kernel runs (or a [headless worker]({DOCS}/howto/cli-and-worker.md)
            does). When the kernel was closed over some fires, the `catchup` policy decides
            what the next engine does about the fires it **missed** (more than 60 s late):

            | `catchup` | on start-up after missed fires |
            |---|---|
            | `none` | skips them |
            | `latest` (default) | starts the most recent one |
            | `all` | starts each one, oldest first |

            Nobody wants to close a kernel for five hours in a tutorial, so this part uses a
            second engine, in memory, on a **virtual clock** that we move by hand
            (`nbconductor.testing.advance`), as the tests of your own schedules would. Its
            three hourly schedules differ only in their catch-up policy.
            """
        ),
        code(
            """
            from nbconductor.engine.clock import VirtualClock
            from nbconductor.testing import advance

            clock = VirtualClock(datetime(2030, 1, 7, 0, 0, tzinfo=timezone.utc))
            test_engine = nc.Engine(clock=clock, make_default=False)  # in memory; this kernel's engine stays the default

            for catchup in ["none", "latest", "all"]:
                test_engine.schedules.create(
                    f"hourly-{catchup}", morning_report, every="1 hour", args=["us"], catchup=catchup, overlap="allow_all"
                )


            def runs_of(schedule_id: str) -> list:
                return sorted(r.id.split("@")[1] for r in test_engine.list(limit=None) if r.id.startswith(schedule_id + "@"))
            """
        ),
        md(
            """
            At 01:00 every schedule fires on time:
            """
        ),
        code(
            """
            advance(test_engine, datetime(2030, 1, 7, 1, 0, tzinfo=timezone.utc))
            {schedule: runs_of(schedule) for schedule in ["hourly-none", "hourly-latest", "hourly-all"]}
            """
        ),
        md(
            """
            Now the clock jumps from 01:00 to 06:30 at once, as if the kernel had been
            closed all that time: the fires of 02:00 to 06:00 were missed.
            """
        ),
        code(
            """
            advance(test_engine, datetime(2030, 1, 7, 6, 30, tzinfo=timezone.utc))
            {schedule: runs_of(schedule) for schedule in ["hourly-none", "hourly-latest", "hourly-all"]}
            """
        ),
        code(
            """
            test_engine.stop()
            """
        ),
        md(
            """
            `none` started nothing, `latest` started the 06:00 fire only, `all` started
            every missed fire, oldest first. Catch-up only looks back `catchup_window`
            (one day by default), and catch-up fires go through the overlap policy like
            any other: with `skip`, catching up five fires starts the first and skips the
            rest while it runs.

            ## 4. Pause, resume, and the schedules view

            The office is closed for the holidays: pause the morning report. A paused
            schedule has no next fire and starts nothing by itself (`trigger_now` still
            fires it on demand).
            """
        ),
        code(
            """
            info = engine.schedules.pause("morning-eu", note="office closed")
            print(f"paused: {info.paused}, next fire: {info.next_fire}")
            """
        ),
        md(
            """
            `%conductor schedules` shows every schedule: whether it is paused (and why), its
            trigger and policies in words, its next fires in its own time zone, how many
            fires started or were skipped, and its last runs. In a live notebook the view
            keeps itself up to date.
            """
        ),
        code(
            """
            %conductor schedules
            """
        ),
        md(
            """
            Resuming fires again **from now on**: the fires it would have had while paused
            are not caught up.
            """
        ),
        code(
            """
            info = engine.schedules.resume("morning-eu")
            print(f"paused: {info.paused}, next fire: {info.next_fire}")
            """
        ),
        md(
            """
            Schedules you no longer need are deleted; the executions they started stay in
            the history.
            """
        ),
        code(
            """
            for sync in SYNCS:
                engine.schedules.delete(sync)
            [info.id for info in engine.schedules.list()]
            """
        ),
        md(
            f"""
            ## Where next

            - [Schedules]({DOCS}/schedules.md): cron syntax, time zones and daylight saving
              time, jitter, start and end times, every error message.
            - [How to run workflows on a schedule]({DOCS}/howto/schedules.md), including
              how to test one.
            - [06-recovery](06-recovery.ipynb): what an engine does when it opens a history
              with open executions and schedules.
            """
        ),
    ]


# =========================================================================== 06-recovery


@notebook
def _06_recovery() -> list[Cell]:
    return [
        md(
            f"""
            # Recovery: executions that outlive their engine

            nbconductor's promise is that an execution survives whatever happens to the
            kernel that started it. This notebook makes that visible. You will:

            1. start a pipeline of five steps and **stop the engine** while the third step
               runs, as a crash or a kernel restart would;
            2. read the history from **another process** while no engine runs;
            3. **start the engine again** and watch the pipeline carry on: the steps that
               had completed are **not run again**;
            4. see that a **durable timer** keeps its due time across a stop;
            5. learn what to do after a **real kernel restart**.

            [Concepts]({DOCS}/concepts.md#what-is-guaranteed) states the guarantees exactly;
            the how-to guide on [recovery]({DOCS}/howto/recovery.md) covers stuck and
            failed executions.
            """
        ),
        md(
            """
            ## Set up

            Load the extension, as in [01-quickstart](01-quickstart.ipynb).
            """,
            FRESH_HISTORY_NOTE,
        ),
        fresh_history("06-recovery"),
        md(
            """
            `RUNS` records every attempt of every step, so we can count what ran. Step 2 is
            slow: its first attempt waits until we `RELEASE` it, so that we can stop the
            engine while it runs.
            """
        ),
        code(
            """
            import asyncio
            import sys
            import threading

            import nbconductor as nc
            from nbconductor.testing import wait_for

            RUNS = []
            RELEASE = threading.Event()
            """
        ),
        code(
            """
            %%task process_chunk(chunk: int) -> str
            RUNS.append(f"chunk {chunk}")
            if chunk == 2 and not RELEASE.is_set():
                RELEASE.wait(30)  # a slow step: still running when the engine stops
            return f"chunk {chunk} done"
            """
        ),
        code(
            """
            %%workflow pipeline(chunks: int) -> list
            results = []
            for chunk in range(chunks):
                results.append(await process_chunk(chunk))
            return results
            """
        ),
        md(
            """
            ## Stop the engine halfway

            Start the pipeline and wait until chunks 0 and 1 are done and chunk 2 is
            running:
            """
        ),
        code(
            """
            run = pipeline.start(5, id="pipeline-1")
            wait_for(lambda: len(RUNS) == 3)
            RUNS
            """
        ),
        md(
            """
            Now stop the engine with no grace period: the running attempt of chunk 2 is
            abandoned on the spot (Python cannot kill a thread, so it goes on, but its
            result will be ignored).

            A stop is gentler than a crash: it commits what it has, where a crash commits
            nothing more. But a crash loses little, because the engine commits every step
            within milliseconds, and acts on a step (starts the next task, arms a timer,
            returns a result) only once it is committed. What follows would be the same
            after a crash.
            """
        ),
        code(
            """
            %conductor stop --grace 0
            """
        ),
        code(
            """
            RELEASE.set()  # let the abandoned attempt finish; nobody listens to it any more
            %conductor status
            """
        ),
        md(
            """
            ## The history is on disk

            With the engine stopped, the history file is closed, and any process can read
            it. Here the `nbconductor` command, run as a separate process, lists the
            execution (still `running`: it has not closed, it is only not being run) and
            its events so far. The last one is chunk 2's `TaskScheduled`, with no outcome.
            """
        ),
        code(
            """
            !{sys.executable} -m nbconductor.cli list
            """
        ),
        code(
            """
            !{sys.executable} -m nbconductor.cli history pipeline-1
            """
        ),
        md(
            """
            ## Start it again

            `%conductor start` opens the same history. Before it takes any request, the
            engine loads every open execution whose workflow is defined in this process
            and **replays** it: it runs the workflow code again from the start, answering
            each `await` from the history. Chunks 0 and 1 get their recorded results back
            at once; chunk 2 has no recorded outcome, so its attempt is dispatched again.
            """
        ),
        code(
            """
            %conductor start
            """
        ),
        md(
            """
            The old handle belonged to the stopped engine; `nc.engine().get(id)` gives one
            on the new engine:
            """
        ),
        code(
            """
            run = nc.engine().get("pipeline-1")
            await run
            """
        ),
        md(
            """
            And here is the proof: chunks 0 and 1 ran once, chunk 2 ran twice (its first
            attempt was cut short), chunks 3 and 4 once.
            """
        ),
        code(
            """
            RUNS
            """
        ),
        md(
            """
            The history shows no trace of the stop: one `TaskCompleted` per chunk, chunk 2's
            as attempt 1, as if nothing had happened. The stop is not part of the
            execution's story.
            """
        ),
        code(
            """
            import json

            for event in run.history():
                if event.kind.value == "TaskCompleted":
                    print(f"{event.kind.value}: {json.loads(event.data)['result']} (attempt {event.attempt})")
            """
        ),
        md(
            f"""
            This is the rule to design tasks by: **tasks run at least once**. An attempt
            that was running when the engine stopped or crashed runs again. Make tasks
            idempotent: pass an idempotency key (an order id, the execution id) to the
            services they call, write files under names derived from their arguments, use
            upserts. Workflow state changes, on the other hand, are recorded exactly once
            ([Concepts]({DOCS}/concepts.md#what-is-guaranteed)).

            ## Timers keep their due time

            A durable timer's due time is recorded when it starts. A reminder sleeps three
            seconds; half a second into its sleep, the engine stops for a second:
            """
        ),
        code(
            """
            %%workflow reminder(person: str) -> str
            await nc.sleep(3)
            return f"reminded {person}"
            """
        ),
        code(
            """
            later = reminder.start("ann", id="reminder-1")
            wait_for(lambda: "TimerStarted" in [event.kind.value for event in later.history()])
            await asyncio.sleep(0.5)
            """
        ),
        code(
            """
            %conductor stop
            await asyncio.sleep(1)  # the engine is down for a second
            %conductor start
            """
        ),
        code(
            """
            later = nc.engine().get("reminder-1")
            await later
            """
        ),
        md(
            """
            The timer fired three seconds after it started, not three seconds after the
            restart (that would have been four and a half): the new engine armed it again
            with its recorded due time. A timer that fell due while no engine ran fires as
            soon as one starts.
            """
        ),
        code(
            """
            at = {event.kind.value: event.at for event in later.history()}
            seconds = (at["TimerFired"] - at["TimerStarted"]).total_seconds()
            print(f"the timer fired {round(seconds)} seconds after it started")
            """
        ),
        md(
            f"""
            ## After a real kernel restart

            A kernel restart (or a crash, or closing the notebook) ends the engine's thread
            with the kernel's process. The history file stays. What the new kernel lacks
            is the *definitions*: nothing knows the workflow's code until its cell runs
            again. So after a restart:

            1. **Run `%load_ext nbconductor`.** It opens the same history file and says
               which executions are waiting, for example:

               ```text
               nbconductor: engine started; history in .nbconductor/orders.duckdb (...).
               1 execution is waiting for its definition: pipeline ×1. Run the cells that define them and they carry on.
               ```

            2. **Run the cells that define the tasks and workflows.** The workflow's cell
               resumes its executions at once and says so (`pipeline: resuming 1
               execution that waited for this definition: pipeline-1`). Until then an
               execution waits, with the condition `waiting for the definition of workflow
               'pipeline'`; signals sent to it meanwhile are kept.

            3. **Get a new handle** with `nc.engine().get("pipeline-1")` and `await` it.

            `%conductor list --status running` shows the open executions and why any of
            them is not progressing; `%conductor resume` looks at them all again after
            you ran more cells. Values that lived only in the kernel (like `RUNS` above)
            are gone, of course: keep what matters in the workflow's results.

            To try it with this notebook, give it a history that survives the restart:
            replace the first cell's temporary folder with a fixed path, such as
            `os.environ["NBCONDUCTOR_DB"] = ".nbconductor/06-recovery.duckdb"` (or drop
            those lines to get the default file). Start the pipeline, restart the kernel
            while chunk 2 waits, and follow the steps above. After the restart `RELEASE` is
            a new, unset event: run `RELEASE.set()` before the workflow's cell, or chunk 2
            waits 30 seconds.

            ## Where next

            - [Recovery]({DOCS}/howto/recovery.md): stuck executions, blocked replays,
              re-running a failed execution from the failed step with `fork()`.
            - [Versioning]({DOCS}/howto/versioning.md): changing a workflow's code while
              executions are open.
            - [CLI and headless worker]({DOCS}/howto/cli-and-worker.md): keep executions
              running with no notebook open.
            """
        ),
    ]


# ================================================================= 07-history-analytics


@notebook
def _07_history_analytics() -> list[Cell]:
    return [
        md(
            f"""
            # History analytics: SQL and a chart over what happened

            Every step of every execution is a row in the history file, a DuckDB
            database. That makes the history more than a recovery log: it is a dataset you
            can query to see which tasks fail, how often they are retried and how long
            they take.

            In this notebook you will:

            1. run a small batch of file imports, some of which hit trouble;
            2. query the history with `%conductor sql`: outcomes, failures, retries;
            3. draw bar charts of attempts, failure rates and durations by task, with no
               plotting library.

            The notebook introduces the tables as it goes ([Architecture]({DOCS}/architecture.md#4-durability-and-the-duckdb-store)
            lists them). `%conductor sql` runs in a read-only transaction, so no query can
            damage the history.
            """
        ),
        md(
            """
            ## Set up

            Load the extension, as in [01-quickstart](01-quickstart.ipynb).
            """,
            FRESH_HISTORY_NOTE,
        ),
        fresh_history("07-history-analytics"),
        md(
            """
            ## A batch of imports, with some trouble

            Twelve files are imported, each by its own execution: download, parse, load.
            The trouble is scripted so that every run of this notebook tells the same
            story: the file server drops some connections (those downloads are retried),
            two files are corrupt (parsing them fails for good, a `ValueError` being
            non-retryable), and the database is busy once.
            """
        ),
        code(
            """
            import asyncio
            import time
            from collections import Counter

            import nbconductor as nc

            FILES = [f"file-{n:02d}" for n in range(1, 13)]
            DROPPED = {"file-03": 1, "file-06": 1, "file-07": 2, "file-09": 1, "file-12": 1}  # failed attempts per file
            CORRUPT = {"file-05", "file-11"}
            BUSY = {"file-08": 1}
            """
        ),
        code(
            """
            %%task download(name: str) -> str --retry initial=0.1s,max_attempts=4
            time.sleep(0.2)
            if DROPPED.get(name, 0) > 0:
                DROPPED[name] -= 1
                raise ConnectionError(f"connection reset while downloading {name}")
            return f"{name}.csv"
            """
        ),
        code(
            """
            %%task parse(path: str) -> int --retry initial=0.1s,max_attempts=4,non_retryable=ValueError
            time.sleep(0.05)
            if path.removesuffix(".csv") in CORRUPT:
                raise ValueError(f"{path} is corrupt: unexpected end of file")
            return 10 * int(path[5:7])  # rows in the file
            """
        ),
        code(
            """
            %%task load(name: str, rows: int) -> int --retry initial=0.1s,max_attempts=4
            time.sleep(0.1)
            if BUSY.get(name, 0) > 0:
                BUSY[name] -= 1
                raise ConnectionError("database is busy")
            return rows
            """
        ),
        code(
            """
            %%workflow import_file(name: str) -> int
            path = await download(name)
            rows = await parse(path)
            return await load(name, rows)
            """
        ),
        md(
            """
            Start the twelve imports at once and wait for them all. A handle is awaitable,
            so `asyncio.gather` waits for several; `return_exceptions=True` collects the
            failures instead of stopping at the first.
            """
        ),
        code(
            """
            runs = [import_file.start(name, id=f"import-{name}") for name in FILES]
            outcomes = await asyncio.gather(*runs, return_exceptions=True)
            Counter(type(outcome).__name__ for outcome in outcomes)
            """
        ),
        md(
            """
            ## Ask the history

            Three tables hold everything: `executions` (one row per execution: workflow,
            status, times, input, result, error), `events` (one row per recorded step:
            `execution_id`, `seq`, `kind`, `"at"`, `name`, `attempt` and a JSON `data`
            column) and `definitions` (every version of every workflow and task, with its
            source). `%conductor sql` runs one read-only query; with `%%conductor sql` the
            query takes the whole cell.

            First, how did the imports end?
            """
        ),
        code(
            """
            %conductor sql SELECT status, count(*) AS executions FROM executions GROUP BY status ORDER BY status
            """
        ),
        md(
            """
            Which ones failed, and why? The `error` column is JSON; DuckDB's `->>`
            operator reads a field of it.
            """
        ),
        code(
            """
            %%conductor sql
            SELECT id, error->>'$.message' AS error
            FROM executions
            WHERE status = 'failed'
            ORDER BY id
            """
        ),
        md(
            """
            Every attempt of every task ends with a `TaskCompleted` or a `TaskFailed`
            event; a `TaskFailed` whose `final` field is true is one that was not retried.
            Counting them by task gives each task's failure rate:
            """
        ),
        code(
            """
            %%conductor sql
            SELECT
                name AS task,
                count(*) AS attempts,
                count(*) FILTER (WHERE kind = 'TaskFailed') AS failed,
                count(*) FILTER (WHERE kind = 'TaskFailed' AND (data->>'$.final')::BOOLEAN) AS gave_up,
                round(100.0 * count(*) FILTER (WHERE kind = 'TaskFailed') / count(*), 1) AS failure_rate
            FROM events
            WHERE kind IN ('TaskCompleted', 'TaskFailed')
            GROUP BY name
            ORDER BY name
            """
        ),
        md(
            """
            The result is also the cell's value. `_` picks it up: a table with `.columns`,
            `.rows` and `.records()` (when pandas is installed, `%conductor sql` returns a
            pandas DataFrame instead, and `_.to_dict("records")` does the same).
            """
        ),
        code(
            """
            by_task = _.records()
            by_task[0]
            """
        ),
        md(
            """
            And which imports needed more than one attempt at some step?
            """
        ),
        code(
            """
            %%conductor sql
            SELECT execution_id, name AS task, max(attempt) AS attempts
            FROM events
            WHERE kind IN ('TaskCompleted', 'TaskFailed')
            GROUP BY execution_id, name
            HAVING max(attempt) > 1
            ORDER BY execution_id, task
            """
        ),
        md(
            """
            ## A chart without a plotting library

            A bar chart is a few lines of Python: an object whose `_repr_html_` draws
            the bars as HTML for the notebook, and whose `repr` draws them with
            characters for any other viewer (a terminal, a diff, a test). Each bar can be
            made of segments, here the attempts that succeeded and those that failed.
            """
        ),
        code(
            """
            import html


            class BarChart:
                \"""Horizontal bars, each made of segments, as HTML and as text.\"""

                COLORS = ["#4c78a8", "#e45756", "#f58518"]
                MARKS = ["█", "░", "▒"]

                def __init__(self, title, labels, segments, unit=""):
                    self.title, self.labels, self.unit = title, labels, unit
                    self.segments = segments  # {segment name: one value per label}
                    self.totals = [sum(values) for values in zip(*segments.values())]

                def _legend(self, marks):
                    return "   ".join(f"{mark} {name}" for mark, name in zip(marks, self.segments))

                def __repr__(self):
                    top, width = max(self.totals) or 1, 40
                    pad = max(len(label) for label in self.labels)
                    lines = [self.title, ""]
                    for i, label in enumerate(self.labels):
                        bar = "".join(
                            mark * round(width * values[i] / top)
                            for mark, values in zip(self.MARKS, self.segments.values())
                        )
                        lines.append(f"{label:<{pad}}  {bar:<{width}}  {self.totals[i]:g}{self.unit}")
                    if len(self.segments) > 1:
                        lines += ["", self._legend(self.MARKS)]
                    return "\\n".join(lines)

                def _repr_html_(self):
                    top = max(self.totals) or 1
                    rows = []
                    for i, label in enumerate(self.labels):
                        bar = "".join(
                            f"<div title='{html.escape(name)}: {values[i]:g}' style='display:inline-block;"
                            f"height:1em;width:{100 * values[i] / top:.2f}%;background:{color}'></div>"
                            for name, values, color in zip(self.segments, self.segments.values(), self.COLORS)
                        )
                        rows.append(
                            f"<tr><td style='text-align:left'>{html.escape(label)}</td>"
                            f"<td style='width:24em;text-align:left;white-space:nowrap'>{bar}</td>"
                            f"<td style='text-align:right'>{self.totals[i]:g}{html.escape(self.unit)}</td></tr>"
                        )
                    legend = ""
                    if len(self.segments) > 1:
                        legend = "<p style='font-size:smaller'>" + "&emsp;".join(
                            f"<span style='color:{color}'>■</span> {html.escape(name)}"
                            for name, color in zip(self.segments, self.COLORS)
                        ) + "</p>"
                    return f"<p><strong>{html.escape(self.title)}</strong></p><table>{''.join(rows)}</table>{legend}"
            """
        ),
        md(
            """
            Attempts by task, split into those that succeeded and those that failed:
            """
        ),
        code(
            """
            tasks = [row["task"] for row in by_task]
            BarChart(
                "Attempts by task",
                tasks,
                {
                    "succeeded": [row["attempts"] - row["failed"] for row in by_task],
                    "failed": [row["failed"] for row in by_task],
                },
            )
            """
        ),
        code(
            """
            BarChart("Failure rate by task", tasks, {"failed attempts": [row["failure_rate"] for row in by_task]}, unit=" %")
            """
        ),
        md(
            """
            `download` fails most often, but every one of its failures was retried
            successfully (`gave_up` is 0): a flaky network. `parse` fails less often, but
            for good: corrupt files, which no retry will fix. That difference is what a
            retry policy and `non_retryable` are for
            ([Timeouts and retries](../docs/howto/timeouts-and-retries.md)).

            ## How long do tasks take?

            A task event's `"at"` is when the attempt ended, and its data holds
            `started_at`: their difference is the attempt's duration. Durations are
            measured, so they differ a little from run to run (the notebook tests do not
            compare this cell's output).
            """
        ),
        code(
            """
            # NBVAL_IGNORE_OUTPUT
            durations = %conductor sql SELECT name AS task, round(1000 * avg(epoch("at") - epoch((data->>'$.started_at')::TIMESTAMPTZ))) AS avg_ms FROM events WHERE kind = 'TaskCompleted' GROUP BY name ORDER BY name
            display(durations)
            BarChart(
                "Average duration of a successful attempt",
                [row["task"] for row in durations.records()],
                {"ms": [row["avg_ms"] for row in durations.records()]},
                unit=" ms",
            )
            """
        ),
        md(
            f"""
            The same queries work outside the notebook, on the same file:
            `nbconductor sql "SELECT ..."` from a shell (with `--csv` or `--json`), or
            `nbconductor export --parquet DIR` to hand the whole history to another tool
            ([CLI and headless worker]({DOCS}/howto/cli-and-worker.md)).

            ## Where next

            - [Operations]({DOCS}/operations.md): where the history lives, how big it
              grows, backups.
            - [01-quickstart](01-quickstart.ipynb) to [06-recovery](06-recovery.ipynb): the
              other tutorials, if you came here first.
            """
        ),
    ]


# ================================================================================ build


def make(stem: str) -> nbformat.NotebookNode:
    """The notebook ``stem`` without outputs, with stable cell ids."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for index, (kind, source) in enumerate([*NOTEBOOKS[stem](), *clean_up()]):
        new = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        cell = new(source)
        cell["id"] = f"cell-{index:02d}"  # stable ids keep rebuilds diff-friendly
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def build(stem: str) -> float:
    """Write, execute and save one notebook; returns the seconds it took to run."""
    # The notebooks keep their history in a temporary folder; a history left here by a
    # reader who ran one with the default file must not leak into the build either.
    for leftover in (HERE / ".nbconductor").glob(f"{stem}.duckdb*"):
        leftover.unlink()
    nb = make(stem)
    started = time.monotonic()
    NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        record_timing=False,  # no per-cell timestamps in the saved file
        resources={"metadata": {"path": str(HERE)}},
    ).execute()
    elapsed = time.monotonic() - started
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("name") == "stderr":
                print(f"  warning: {stem} {cell['id']} wrote to stderr: {output['text']!r}")
    nbformat.write(nb, HERE / f"{stem}.ipynb")
    return elapsed


def _select(names: list[str]) -> list[str]:
    if not names:
        return list(NOTEBOOKS)
    chosen = []
    for name in names:
        name = Path(name).stem
        found = [s for s in NOTEBOOKS if s == name or s.split("-", 1)[0] == name]
        found = found or [s for s in NOTEBOOKS if name in s]
        if len(found) != 1:
            raise SystemExit(
                f"{name!r} names {len(found)} notebooks; choose from {list(NOTEBOOKS)}"
            )
        chosen.append(found[0])
    return chosen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "names", nargs="*", help="notebooks to build (number or name); all by default"
    )
    args = parser.parse_args(argv)
    for stem in _select(args.names):
        print(f"{stem}: running ...", flush=True)
        print(f"{stem}: saved ({build(stem):.1f} s)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
