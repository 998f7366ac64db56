# %% [markdown]
# # Parallel steps, races, child workflows and long loops
#
# A workflow does not have to take one step at a time. In this notebook you
# will:
#
# 1. **fan out** to many tasks at once and **fan in** their results with
#    `nc.gather`;
# 2. **race** tasks against each other and against a **deadline**;
# 3. split a big job into **child workflows**, each with its own history;
# 4. keep a long-running loop's history short with **continue-as-new**.
#
# All of these are durable: the engine records which steps started and which
# finished, so after a restart it knows exactly which ones it is still waiting
# for. [Concepts](../docs/concepts.md#workflows-and-tasks) introduces them.

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
os.environ["NBCONDUCTOR_DB"] = os.path.join(tutorial_folder, "04-parallel-and-children.duckdb")

# %load_ext nbconductor

# %%
import asyncio
import threading
import time

import nbconductor as nc

# %% [markdown]
# ## 1. Fan out, fan in
#
# A task that makes a thumbnail takes half a second. It also counts how many
# thumbnails are being made at the same moment, so we can see the fan-out
# happen.

# %%
LOCK = threading.Lock()
BUSY = {"now": 0, "peak": 0}

# %%
# %%task make_thumbnail(image: str) -> str
with LOCK:
    BUSY["now"] += 1
    BUSY["peak"] = max(BUSY["peak"], BUSY["now"])
time.sleep(0.5)  # the actual resizing
with LOCK:
    BUSY["now"] -= 1
return f"thumb-{image}"

# %% [markdown]
# Calling a task inside a workflow returns an awaitable without waiting for it.
# `nc.gather(...)` schedules them all at once and returns their results **in
# the order of its arguments**, whatever order they finish in. (Plain
# `asyncio.gather`, `asyncio.wait` and `asyncio.create_task` work too: the
# workflow's event loop makes their order deterministic.)

# %%
# %%workflow thumbnails(images: list) -> list
return await nc.gather(*[make_thumbnail(image) for image in images])

# %%
images = [f"photo-{n}.jpg" for n in range(1, 9)]
await thumbnails.start(images, id="thumbnails-1")

# %% [markdown]
# Eight tasks of half a second each, and all eight ran at the same time:

# %%
BUSY["peak"]

# %% [markdown]
# Sync tasks run on the engine's thread pool (32 threads by default, see
# [Scaling out](../docs/howto/scaling-out.md) for more). If one of the tasks
# fails for good, `gather` raises its `nc.TaskFailed`; with
# `return_exceptions=True` it returns the errors in place of the results instead.
#
# ## 2. Race, with a deadline
#
# Two suppliers are asked for a quote; the first answer wins. A quote takes as
# long as the supplier takes (`seconds`); the task checks `nc.cancelled()` while
# it waits, so that it stops as soon as nobody wants its answer any more.

# %%
# %%task ask_supplier(supplier: str, seconds: float, price: float) -> dict
waited = 0.0
while waited < seconds:
    if nc.cancelled():  # the race was decided without us
        return {}
    time.sleep(0.05)
    waited += 0.05
return {"supplier": supplier, "price": price}

# %% [markdown]
# `nc.race(...)` returns the result of the first awaitable to finish and cancels
# the others. Wrapped in `asyncio.wait_for(..., timeout=deadline)` it also has a
# deadline, a durable timer like every wait in a workflow; when the deadline
# passes first, the workflow gets `asyncio.TimeoutError` and falls back on the
# list price.

# %%
# %%workflow best_quote(suppliers: list, deadline: float) -> dict
quotes = [ask_supplier(name, seconds, price) for name, seconds, price in suppliers]
try:
    return await asyncio.wait_for(nc.race(*quotes), timeout=deadline)
except TimeoutError:
    return {"supplier": "list price", "price": 100.0}

# %% [markdown]
# ACME answers in 0.2 s, Globex would take 1.5 s, and the deadline is one second:
# ACME wins, even though Globex would have been cheaper. That is what a race is
# for: the first answer, not the best one.

# %%
quick = best_quote.start([["acme", 0.2, 95.0], ["globex", 1.5, 90.0]], 1.0, id="quote-1")
await quick

# %% [markdown]
# The history shows both quotes scheduled, ACME's completed, Globex's cancelled,
# and the deadline's timer cancelled too:

# %%
for event in quick.history():
    print(f"{event.seq:>2}  {event.kind.value:<20} {event.name or ''}")

# %% [markdown]
# Now both suppliers are slow and the deadline is half a second: the timer fires
# first and the workflow returns the list price.

# %%
slow = best_quote.start([["globex", 1.5, 90.0], ["initech", 2.0, 85.0]], 0.5, id="quote-2")
await slow

# %% [markdown]
# ## 3. Child workflows
#
# A big job reads better, and records better, as several workflows: a parent
# that coordinates, and **children** that each do one part with their own
# history, status and retries. Inside a workflow, calling another workflow starts
# it as a child and waits for its result (`nc.child(workflow, ...)` says the same
# explicitly; `nc.start_child` returns a handle at once, to signal or cancel the
# child).

# %%
# %%task write_description(sku: str) -> str
return f"A fine {sku}."

# %%
# %%workflow publish_product(sku: str) -> dict
thumbnail, description = await nc.gather(make_thumbnail(f"{sku}.jpg"), write_description(sku))
return {"sku": sku, "thumbnail": thumbnail, "description": description}

# %%
# %%workflow publish_catalogue(skus: list) -> list
return await nc.gather(*[publish_product(sku) for sku in skus])

# %%
await publish_catalogue.start(["lamp", "chair", "desk"], id="catalogue")

# %% [markdown]
# Each child is an execution of its own, named after its parent (`catalogue/1`,
# `catalogue/2`, ...) and linked to it by `parent_id`:

# %%
# %%conductor sql
SELECT id, workflow, status, parent_id FROM executions
WHERE id LIKE 'catalogue%' ORDER BY id

# %% [markdown]
# A child that fails raises `nc.ChildFailed` in the parent, which can catch it
# like a failed task. When the parent closes first, its open children are
# terminated; `nc.start_child(..., parent_close="abandon")` lets them run on.
#
# ## 4. A long loop: continue-as-new
#
# A workflow that loops for ever (drain a queue, poll an inbox, run a nightly
# job for years) would grow an endless history, and a restart would replay all of
# it. Instead, after each batch it calls `nc.continue_as_new(...)`: this run ends,
# and a fresh run of the same workflow starts with the new arguments and an empty
# history.

# %%
QUEUE = [f"message {n}" for n in range(1, 24)]  # 23 messages waiting

# %%
# %%task fetch_batch(cursor: int, size: int) -> list
return QUEUE[cursor : cursor + size]

# %%
# %%task handle_message(message: str) -> str
return message.upper()

# %%
# %%workflow drain_queue(cursor: int = 0, handled: int = 0) -> int
batch = await fetch_batch(cursor, 5)
await nc.gather(*[handle_message(message) for message in batch])
if len(batch) < 5:  # the queue is empty: the chain ends here
    return handled + len(batch)
nc.continue_as_new(cursor + len(batch), handled + len(batch))

# %% [markdown]
# Awaiting the handle follows the chain to its last run and returns that run's
# result:

# %%
drain = drain_queue.start(id="drain")
await drain

# %% [markdown]
# Five runs handled the 23 messages, five at a time. Each run after the first
# has the id of the first plus `#2`, `#3`, ...; each one ended `ContinuedAsNew`
# except the last. However long the queue, no run has more than 14 events:

# %%
# %%conductor sql
SELECT x.id, x.status, x.input, count(*) AS events
FROM executions x JOIN events e ON e.execution_id = x.id
WHERE x.workflow = 'drain_queue'
GROUP BY x.id, x.status, x.input, x.created_at
ORDER BY x.created_at

# %% [markdown]
# ## Where next
#
# - [05-schedules](05-schedules.ipynb) starts workflows on a timetable.
# - [06-recovery](06-recovery.ipynb) shows that everything above survives an
#   engine that stops halfway.
# - [Signals](../docs/howto/signals.md#signal-a-child-workflow) shows a parent
#   signalling its child; [Timeouts and
#   retries](../docs/howto/timeouts-and-retries.md#bound-a-workflow-in-time)
#   covers deadlines in depth.

# %% [markdown]
# ## Clean up
#
# Unloading the extension stops the engine (running tasks get two seconds, the
# history is committed and the file closed). Then the tutorial's temporary
# history can go; in your own notebooks you would keep it, of course.

# %%
# %unload_ext nbconductor
shutil.rmtree(tutorial_folder)
