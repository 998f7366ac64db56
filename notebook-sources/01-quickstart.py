# %% [markdown]
# # Quickstart: your first durable workflow
#
# nbconductor runs **workflows** inside this Jupyter kernel and writes every step
# they take to a history file. Because the history is on disk, a workflow can wait
# for a day, survive a kernel restart and carry on where it stopped.
#
# In this notebook you will:
#
# 1. load the extension, which starts an engine in the kernel;
# 2. write two **tasks** (the functions that do the work) and a **workflow** (the
#    code that decides what happens) with the `%%task` and `%%workflow` magics;
# 3. start an **execution** and look at it while it runs;
# 4. read the **history** it left behind.
#
# It takes about five minutes. The [tutorial](../docs/tutorial.md) tells the same
# story in plain Python, and [Concepts](../docs/concepts.md) explains the ideas.

# %% [markdown]
# ## 1. Load the extension
#
# `%load_ext nbconductor` starts an engine in a background thread of this kernel
# and registers the magics: `%%task`, `%%workflow` and `%conductor`.
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
os.environ["NBCONDUCTOR_DB"] = os.path.join(tutorial_folder, "01-quickstart.duckdb")

# %load_ext nbconductor

# %% [markdown]
# The engine is running. Everything you import from nbconductor comes from one
# short module:

# %%
import nbconductor as nc

# Stands in for a data warehouse: units sold per region this week.
SALES = {"north": [120, 80, 95], "south": [60, 75], "east": [200, 10, 30, 40]}

# %% [markdown]
# ## 2. Tasks do the work
#
# A **task** is an ordinary function that does one piece of work: query a
# database, call an API, train a model. In a `%%task` cell the first line names
# the task, its parameters and its options; the rest of the cell is the body of
# the function.
#
# Here `--retry max_attempts=3,initial=1s` says what to do when an attempt raises
# (try again after a second, then after two, and give up after three attempts) and
# `--timeout 30s` how long one attempt may take.

# %%
# %%task fetch_sales(region: str) -> list --retry max_attempts=3,initial=1s --timeout 30s
print(f"fetching sales for {region}")
return SALES[region]


# %% [markdown]
# A plain decorated function works just as well, and is handy when the task is
# short:

# %%
@nc.task
def publish(totals: dict) -> str:
    best = max(totals, key=totals.get)
    return f"{sum(totals.values())} units sold; best region: {best}"


# %% [markdown]
# Called outside a workflow, a task is simply the function, which makes it easy to
# try:

# %%
fetch_sales("south")

# %% [markdown]
# ## 3. A workflow decides what happens
#
# A **workflow** is the body of an `async def`: it calls tasks, waits, and decides
# what to do next. Each `await` of a task or a timer is a step that nbconductor
# records in the history.
#
# - `await fetch_sales(region)` does not run the function right here: it asks the
#   engine to run it (on a worker thread, with its retries and timeout) and waits
#   for the result.
# - `nc.sleep("2s")` is a **durable timer**: its due time is in the history, so
#   the wait survives a restart. Real workflows sleep for hours or days.
# - `nc.progress(...)` and `nc.state` tell whoever watches the execution how far
#   it got.
#
# Workflow code is run again from the start when an execution resumes after a
# restart, so it must make the same decisions every time: it leaves I/O to tasks
# and reads the clock with `nc.now()`. The `%%workflow` magic warns when a cell
# breaks [these rules](../docs/concepts.md#the-determinism-rules).

# %%
# %%workflow weekly_report(regions: list) -> dict --timeout 1h
totals = {}
for done, region in enumerate(regions):
    nc.progress(done / len(regions), f"fetching {region}")
    totals[region] = sum(await fetch_sales(region))
nc.state["totals"] = totals

nc.progress(1.0, "waiting for late corrections")
await nc.sleep("2s")

return {"totals": totals, "summary": await publish(totals)}

# %% [markdown]
# The cell bound the name `weekly_report` to the workflow's definition.
#
# ## 4. Start an execution
#
# `weekly_report.start(...)` records a new **execution** and returns a **handle**
# to it at once; the execution runs in the background while you carry on. The
# `id` is optional. With one, starting the same id again returns the existing
# execution instead of starting a second one.

# %%
run = weekly_report.start(["north", "south", "east"], id="week-47")
run

# %% [markdown]
# ## 5. Watch it
#
# Displaying a handle shows the execution: its workflow, id and status. In a live
# notebook the view follows the execution as it runs, with its progress and its
# steps ([the reference](../docs/reference.md#widgets) lists the views).
#
# The handle also answers questions. The three fetches take a few milliseconds,
# then the workflow waits on its timer. Here we wait until it got there (in a
# notebook of your own you would just look), then ask for its progress and its
# state:

# %%
from nbconductor.testing import wait_for

wait_for(lambda: run.progress.get("message") == "waiting for late corrections")
run.progress

# %%
run.state

# %% [markdown]
# To wait for the result, `await` the handle. The wait does not block the
# kernel: other cells, and the buttons of the views, keep working meanwhile. (The
# blocking `run.result(timeout=...)` is for scripts.)

# %%
result = await run
result

# %%
run

# %% [markdown]
# Starting the same id again does not run anything: it hands back the execution
# that already exists.

# %%
again = weekly_report.start(["north", "south", "east"], id="week-47")
await again  # the result of week-47, at once

# %% [markdown]
# ## 6. Read its history
#
# The `%conductor` magic looks at and controls executions. `list` shows them,
# newest first:

# %%
# %conductor list

# %% [markdown]
# `show` describes one execution: its input, its result, and what its tasks
# printed (task output goes to the execution's log, not to whichever cell
# happens to be running):

# %%
# %conductor show week-47

# %% [markdown]
# `history` lists the recorded **events**: the execution started, each task was
# scheduled and completed, the timer started and fired, the execution completed.
# This list is what the engine replays to rebuild an execution after a restart.

# %%
# %conductor history week-47

# %% [markdown]
# The same events are available in Python, for your own checks and reports:

# %%
for event in run.history():
    print(f"{event.seq:>2}  {event.kind.value:<18} {event.name or ''}")

# %% [markdown]
# And since the history is a DuckDB database, SQL works on it too
# ([07-history-analytics](07-history-analytics.ipynb) goes further):

# %%
# %conductor sql SELECT name AS task, count(*) AS runs FROM events WHERE kind = 'TaskCompleted' GROUP BY name ORDER BY name

# %% [markdown]
# ## Where next
#
# - [02-human-in-the-loop](02-human-in-the-loop.ipynb): wait for a person's
#   decision, with a timeout.
# - [03-order-saga](03-order-saga.ipynb): retries, errors that are not worth
#   retrying, and undoing completed steps.
# - [04-parallel-and-children](04-parallel-and-children.ipynb): run steps at the
#   same time, race them, split work into child workflows.
# - [05-schedules](05-schedules.ipynb): start workflows on a timetable.
# - [06-recovery](06-recovery.ipynb): stop the engine mid-flight and watch the
#   execution carry on.
# - [07-history-analytics](07-history-analytics.ipynb): SQL and a chart over the
#   history.
#
# Every magic and function is in the [reference](../docs/reference.md).

# %% [markdown]
# ## Clean up
#
# Unloading the extension stops the engine (running tasks get two seconds, the
# history is committed and the file closed). Then the tutorial's temporary
# history can go; in your own notebooks you would keep it, of course.

# %%
# %unload_ext nbconductor
shutil.rmtree(tutorial_folder)
