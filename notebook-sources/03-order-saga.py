# %% [markdown]
# # An order saga: retries, final errors and compensation
#
# An order touches several systems: the payment provider charges the card, the
# warehouse reserves the items, the carrier books a shipment, the mail server
# sends the confirmation. None of them can be rolled back like a database
# transaction: once the card is charged, it is charged. When a later step fails,
# the earlier ones must be **undone** by a compensating action (refund the
# payment, release the items). This pattern is called a **saga**.
#
# In this notebook you will:
#
# 1. give each step a retry policy, so that a flaky payment gateway is retried;
# 2. mark errors that no retry will fix as **non-retryable**, so they fail at once;
# 3. use `nc.Saga` to run the compensations, newest first, when a step fails;
# 4. cancel an order halfway and watch the same compensations run.
#
# The how-to guides on [sagas](../docs/howto/sagas.md) and on
# [timeouts and retries](../docs/howto/timeouts-and-retries.md) have every
# option.

# %% [markdown]
# ## Set up
#
# Load the extension, as in [01-quickstart](01-quickstart.ipynb).
#
# The first cell points nbconductor at a **fresh history** for this tutorial: a new,
# empty file in a temporary folder that is deleted when the kernel exits, so that the
# notebook tells the same story each time it runs. In your own notebooks leave those
# lines out: `%load_ext nbconductor` then keeps the history in
# `.nbconductor/<notebook name>.duckdb` beside the notebook, where it survives kernel
# restarts ([Operations](../docs/operations.md#where-the-history-lives)).

# %%
import atexit
import os
import shutil
import tempfile

# A fresh history for this tutorial, deleted when the kernel exits.
# Leave these lines out in your own notebooks (see above).
tutorial_folder = tempfile.mkdtemp(prefix="nbconductor-tutorial-")
atexit.register(shutil.rmtree, tutorial_folder, ignore_errors=True)
os.environ["NBCONDUCTOR_DB"] = os.path.join(tutorial_folder, "03-order-saga.duckdb")

# %load_ext nbconductor

# %% [markdown]
# The outside world is simulated by three Python objects: the stock of the
# warehouse, a gateway that times out a given number of times per order, and a
# ledger that records every effect a task had, in order.

# %%
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


# %% [markdown]
# ## The steps and their undo
#
# Each step is a task with its own retry policy. `--retry initial=0.2s,...`
# waits 0.2 s after the first failure, then twice as long each time (real
# policies start at a second or more).
#
# Not every error is worth a retry. `non_retryable=OutOfStock` makes that error
# fail the task at once; a task can also say so itself by raising
# `nc.ApplicationError(..., non_retryable=True)`, as `create_shipment` does when
# the carrier refuses an address.

# %%
# %%task charge_payment(order_id: str, amount: float) -> str --retry initial=0.2s,max_attempts=5
if GATEWAY_TIMEOUTS.get(order_id, 0) > 0:
    GATEWAY_TIMEOUTS[order_id] -= 1
    raise ConnectionError("the payment gateway timed out")
LEDGER.append(f"charged {amount:.2f} EUR for {order_id}")
return f"payment-{order_id}"

# %%
# %%task reserve_inventory(order_id: str, sku: str, qty: int) -> dict --retry initial=0.2s,max_attempts=5,non_retryable=OutOfStock
if STOCK[sku] < qty:
    raise OutOfStock(f"{qty} {sku} ordered, {STOCK[sku]} in stock")
STOCK[sku] -= qty
LEDGER.append(f"reserved {qty} {sku} for {order_id}")
return {"order_id": order_id, "sku": sku, "qty": qty}

# %%
# %%task create_shipment(order_id: str, address: str) -> str --retry initial=0.2s,max_attempts=5
if not address.strip():
    raise nc.ApplicationError("the carrier refused an empty address", non_retryable=True)
LEDGER.append(f"shipment booked for {order_id}")
return f"shipment-{order_id}"

# %%
# %%task send_confirmation(order_id: str, shipment: str) -> str --retry initial=0.2s,max_attempts=5
LEDGER.append(f"confirmation sent for {order_id}")
return f"confirmed {order_id}, tracking {shipment}"

# %% [markdown]
# The compensations are tasks too, recorded in the history like the steps they
# undo. They may run more than once (tasks run at least once), so each one must
# be harmless to repeat: refunding a payment twice must refund it once. Here each
# checks the ledger first; a real one would pass an idempotency key to the
# provider.

# %%
# %%task refund_payment(payment: str) --retry initial=0.2s,max_attempts=10
if f"refunded {payment}" not in LEDGER:
    LEDGER.append(f"refunded {payment}")

# %%
# %%task release_inventory(reservation: dict) --retry initial=0.2s,max_attempts=10
done = f"released {reservation['qty']} {reservation['sku']} for {reservation['order_id']}"
if done not in LEDGER:
    STOCK[reservation["sku"]] += reservation["qty"]
    LEDGER.append(done)

# %%
# %%task cancel_shipment(shipment: str) --retry initial=0.2s,max_attempts=10
if f"cancelled {shipment}" not in LEDGER:
    LEDGER.append(f"cancelled {shipment}")


# %% [markdown]
# ## The order process
#
# Inside `async with nc.Saga() as saga:`, each step that succeeded registers its
# undo with `saga.add(...)` right away. When an exception leaves the block (a
# step failed for good, or the execution was cancelled), the saga awaits the
# registered compensations in reverse order, then lets the exception go on.
#
# Between reserving and shipping, the workflow waits for the warehouse to say
# the parcel is `packed` (a signal, see
# [02-human-in-the-loop](02-human-in-the-loop.ipynb)). The confirmation e-mail
# comes after the saga block on purpose: once the parcel has left, a failed
# e-mail is no reason to refund the customer.

# %%
# %%workflow order_process(order: dict) -> dict
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


# %% [markdown]
# A small helper waits for an order and says how it ended; a failed, cancelled or
# terminated execution raises `nc.ExecutionFailed` at the `await`:

# %%
async def outcome(run):
    try:
        return await run
    except nc.ExecutionFailed as failed:
        print(failed)
        return failed.status


# %% [markdown]
# ## Order A-1: a flaky gateway, retried
#
# The gateway times out twice on this order. Each failed attempt is recorded and
# retried after its wait; the workflow sees none of it. The warehouse's `packed`
# signal is sent right away: it waits in the history until the workflow asks for
# it.

# %%
a1 = order_process.start(
    {"id": "A-1", "amount": 59.90, "sku": "lamp", "qty": 2, "address": "1 Main St"}, id="A-1"
)
a1.signal("packed")
await outcome(a1)

# %%
ledger("A-1")

# %% [markdown]
# The history keeps each failed attempt, with its error and whether it was final:

# %%
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

# %% [markdown]
# ## Order A-2: out of stock, nothing to retry
#
# There are no chairs. `OutOfStock` is non-retryable, so the task fails on its
# first attempt, the exception leaves the saga block, and the saga refunds the
# payment, the only step that had succeeded. The execution ends `Failed`.

# %%
a2 = order_process.start(
    {"id": "A-2", "amount": 120.00, "sku": "chair", "qty": 1, "address": "2 Elm St"}, id="A-2"
)
await outcome(a2)

# %%
ledger("A-2")

# %% [markdown]
# ## Order A-3: the carrier refuses, undo in reverse order
#
# This order is paid, reserved and packed, then the carrier refuses its empty
# address. The saga undoes the two steps that succeeded, newest first: the
# reservation is released, then the payment is refunded.

# %%
a3 = order_process.start(
    {"id": "A-3", "amount": 340.00, "sku": "desk", "qty": 1, "address": " "}, id="A-3"
)
a3.signal("packed")
await outcome(a3)

# %%
ledger("A-3")

# %% [markdown]
# ## Order A-4: cancelled while it waits
#
# The customer changes their mind while the warehouse is packing. Cancelling
# raises `asyncio.CancelledError` at the workflow's current `await` (here, the
# wait for `packed`). It leaves the saga block like any other exception, so the
# same compensations run, and the execution ends `Cancelled`.
#
# (Terminating instead, with `%conductor terminate` or `run.terminate()`, would
# end the execution at once and run no compensation: cancel when there is
# something to undo.)

# %%
from nbconductor.testing import wait_for

a4 = order_process.start(
    {"id": "A-4", "amount": 29.95, "sku": "lamp", "qty": 1, "address": "4 Oak St"}, id="A-4"
)
wait_for(lambda: a4.waiting_for == ["packed"])  # in your notebook you would just look
a4.state

# %%
# %conductor cancel A-4

# %%
await outcome(a4)

# %%
ledger("A-4")

# %% [markdown]
# ## The end of the day
#
# Every reservation of a failed or cancelled order was released: only A-1's two
# lamps left the stock.

# %%
STOCK

# %%
# %conductor list

# %% [markdown]
# ## Take-aways
#
# - Give every task a retry policy that **ends** (`max_attempts`): the default
#   retries forever, which hides bugs.
# - Mark errors that a retry cannot fix as **non-retryable**, by type
#   (`non_retryable=...`) or by raising `nc.ApplicationError(...,
#   non_retryable=True)`.
# - Register each compensation **right after** its step succeeds, and make
#   compensations idempotent.
# - **Cancel** runs the compensations; **terminate** does not.
#
# [Sagas](../docs/howto/sagas.md) covers compensations that fail themselves and
# running compensations in parallel; next,
# [04-parallel-and-children](04-parallel-and-children.ipynb) runs steps at the
# same time.

# %% [markdown]
# ## Clean up
#
# Unloading the extension stops the engine (running tasks get two seconds, the
# history is committed and the file closed). Then the tutorial's temporary
# history can go; in your own notebooks you would keep it, of course.

# %%
# %unload_ext nbconductor
shutil.rmtree(tutorial_folder)
