# %% [markdown]
# # Recovery: executions that outlive their engine
#
# nbconductor's promise is that an execution survives whatever happens to the
# kernel that started it. This notebook makes that visible. You will:
#
# 1. start a pipeline of five steps and **stop the engine** while the third step
#    runs, as a crash or a kernel restart would;
# 2. read the history from **another process** while no engine runs;
# 3. **start the engine again** and watch the pipeline carry on: the steps that
#    had completed are **not run again**;
# 4. see that a **durable timer** keeps its due time across a stop;
# 5. learn what to do after a **real kernel restart**.
#
# [Concepts](../docs/concepts.md#what-is-guaranteed) states the guarantees exactly;
# the how-to guide on [recovery](../docs/howto/recovery.md) covers stuck and
# failed executions.

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
os.environ["NBCONDUCTOR_DB"] = os.path.join(tutorial_folder, "06-recovery.duckdb")

# %load_ext nbconductor

# %% [markdown]
# `RUNS` records every attempt of every step, so we can count what ran. Step 2 is
# slow: its first attempt waits until we `RELEASE` it, so that we can stop the
# engine while it runs.

# %%
import asyncio
import sys
import threading

import nbconductor as nc
from nbconductor.testing import wait_for

RUNS = []
RELEASE = threading.Event()

# %%
# %%task process_chunk(chunk: int) -> str
RUNS.append(f"chunk {chunk}")
if chunk == 2 and not RELEASE.is_set():
    RELEASE.wait(30)  # a slow step: still running when the engine stops
return f"chunk {chunk} done"

# %%
# %%workflow pipeline(chunks: int) -> list
results = []
for chunk in range(chunks):
    results.append(await process_chunk(chunk))
return results

# %% [markdown]
# ## Stop the engine halfway
#
# Start the pipeline and wait until chunks 0 and 1 are done and chunk 2 is
# running:

# %%
run = pipeline.start(5, id="pipeline-1")
wait_for(lambda: len(RUNS) == 3)
RUNS

# %% [markdown]
# Now stop the engine with no grace period: the running attempt of chunk 2 is
# abandoned on the spot (Python cannot kill a thread, so it goes on, but its
# result will be ignored).
#
# A stop is gentler than a crash: it commits what it has, where a crash commits
# nothing more. But a crash loses little, because the engine commits every step
# within milliseconds, and acts on a step (starts the next task, arms a timer,
# returns a result) only once it is committed. What follows would be the same
# after a crash.

# %%
# %conductor stop --grace 0

# %%
RELEASE.set()  # let the abandoned attempt finish; nobody listens to it any more
# %conductor status

# %% [markdown]
# ## The history is on disk
#
# With the engine stopped, the history file is closed, and any process can read
# it. Here the `nbconductor` command, run as a separate process, lists the
# execution (still `running`: it has not closed, it is only not being run) and
# its events so far. The last one is chunk 2's `TaskScheduled`, with no outcome.

# %%
# !{sys.executable} -m nbconductor.cli list

# %%
# !{sys.executable} -m nbconductor.cli history pipeline-1

# %% [markdown]
# ## Start it again
#
# `%conductor start` opens the same history. Before it takes any request, the
# engine loads every open execution whose workflow is defined in this process
# and **replays** it: it runs the workflow code again from the start, answering
# each `await` from the history. Chunks 0 and 1 get their recorded results back
# at once; chunk 2 has no recorded outcome, so its attempt is dispatched again.

# %%
# %conductor start

# %% [markdown]
# The old handle belonged to the stopped engine; `nc.engine().get(id)` gives one
# on the new engine:

# %%
run = nc.engine().get("pipeline-1")
await run

# %% [markdown]
# And here is the proof: chunks 0 and 1 ran once, chunk 2 ran twice (its first
# attempt was cut short), chunks 3 and 4 once.

# %%
RUNS

# %% [markdown]
# The history shows no trace of the stop: one `TaskCompleted` per chunk, chunk 2's
# as attempt 1, as if nothing had happened. The stop is not part of the
# execution's story.

# %%
import json

for event in run.history():
    if event.kind.value == "TaskCompleted":
        print(f"{event.kind.value}: {json.loads(event.data)['result']} (attempt {event.attempt})")

# %% [markdown]
# This is the rule to design tasks by: **tasks run at least once**. An attempt
# that was running when the engine stopped or crashed runs again. Make tasks
# idempotent: pass an idempotency key (an order id, the execution id) to the
# services they call, write files under names derived from their arguments, use
# upserts. Workflow state changes, on the other hand, are recorded exactly once
# ([Concepts](../docs/concepts.md#what-is-guaranteed)).
#
# ## Timers keep their due time
#
# A durable timer's due time is recorded when it starts. A reminder sleeps three
# seconds; half a second into its sleep, the engine stops for a second:

# %%
# %%workflow reminder(person: str) -> str
await nc.sleep(3)
return f"reminded {person}"

# %%
later = reminder.start("ann", id="reminder-1")
wait_for(lambda: "TimerStarted" in [event.kind.value for event in later.history()])
await asyncio.sleep(0.5)

# %%
# %conductor stop
await asyncio.sleep(1)  # the engine is down for a second
# %conductor start

# %%
later = nc.engine().get("reminder-1")
await later

# %% [markdown]
# The timer fired three seconds after it started, not three seconds after the
# restart (that would have been four and a half): the new engine armed it again
# with its recorded due time. A timer that fell due while no engine ran fires as
# soon as one starts.

# %%
at = {event.kind.value: event.at for event in later.history()}
seconds = (at["TimerFired"] - at["TimerStarted"]).total_seconds()
print(f"the timer fired {round(seconds)} seconds after it started")

# %% [markdown]
# ## After a real kernel restart
#
# A kernel restart (or a crash, or closing the notebook) ends the engine's thread
# with the kernel's process. The history file stays. What the new kernel lacks
# is the *definitions*: nothing knows the workflow's code until its cell runs
# again. So after a restart:
#
# 1. **Run `%load_ext nbconductor`.** It opens the same history file and says
#    which executions are waiting, for example:
#
#    ```text
#    nbconductor: engine started; history in .nbconductor/orders.duckdb (...).
#    1 execution is waiting for its definition: pipeline ×1. Run the cells that define them and they carry on.
#    ```
#
# 2. **Run the cells that define the tasks and workflows.** The workflow's cell
#    resumes its executions at once and says so (`pipeline: resuming 1
#    execution that waited for this definition: pipeline-1`). Until then an
#    execution waits, with the condition `waiting for the definition of workflow
#    'pipeline'`; signals sent to it meanwhile are kept.
#
# 3. **Get a new handle** with `nc.engine().get("pipeline-1")` and `await` it.
#
# `%conductor list --status running` shows the open executions and why any of
# them is not progressing; `%conductor resume` looks at them all again after
# you ran more cells. Values that lived only in the kernel (like `RUNS` above)
# are gone, of course: keep what matters in the workflow's results.
#
# To try it with this notebook, give it a history that survives the restart:
# replace the first cell's temporary folder with a fixed path, such as
# `os.environ["NBCONDUCTOR_DB"] = ".nbconductor/06-recovery.duckdb"` (or drop
# those lines to get the default file). Start the pipeline, restart the kernel
# while chunk 2 waits, and follow the steps above. After the restart `RELEASE` is
# a new, unset event: run `RELEASE.set()` before the workflow's cell, or chunk 2
# waits 30 seconds.
#
# ## Where next
#
# - [Recovery](../docs/howto/recovery.md): stuck executions, blocked replays,
#   re-running a failed execution from the failed step with `fork()`.
# - [Versioning](../docs/howto/versioning.md): changing a workflow's code while
#   executions are open.
# - [CLI and headless worker](../docs/howto/cli-and-worker.md): keep executions
#   running with no notebook open.

# %% [markdown]
# ## Clean up
#
# Unloading the extension stops the engine (running tasks get two seconds, the
# history is committed and the file closed). Then the tutorial's temporary
# history can go; in your own notebooks you would keep it, of course.

# %%
# %unload_ext nbconductor
shutil.rmtree(tutorial_folder)
