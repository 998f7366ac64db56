# %% [markdown]
# # Scaling out: processes, a Dask cluster and rate-limited queues
#
# By default a task runs on a thread of the kernel. In this notebook you will:
#
# 1. run CPU-bound tasks in **local child processes** (`--runner process`);
# 2. send tasks defined in this notebook to a **Dask cluster** (a `LocalCluster`
#    here; a real cluster works the same way);
# 3. limit a task with a **queue**: at most 2 at once, starts paced at 5 a second,
#    as you would for a rate-limited API.
#
# The engine stays in the kernel and records every attempt, wherever it ran.
# [Scaling out](../docs/howto/scaling-out.md) explains what runs where.

# %% [markdown]
# ## Set up
#
# As in the other tutorials, the first cell points nbconductor at a fresh history
# that is deleted at the end; leave those lines out in your own notebooks.

# %%
import atexit
import os
import shutil
import tempfile

# A fresh history for this tutorial, deleted when the kernel exits.
# Leave these lines out in your own notebooks (see above).
tutorial_folder = tempfile.mkdtemp(prefix="nbconductor-tutorial-")
atexit.register(shutil.rmtree, tutorial_folder, ignore_errors=True)
os.environ["NBCONDUCTOR_DB"] = os.path.join(tutorial_folder, "08-scale-out.duckdb")

# %load_ext nbconductor

# %%
import time

import dask
from dask.distributed import Client, LocalCluster

import nbconductor as nc

# %% [markdown]
# ## 1. CPU-bound work in child processes
#
# Pure-Python computation holds the GIL: on threads, two such tasks take turns. With
# `--runner process` each attempt runs in a child process (started on first use, one
# per CPU), and a child that crashes fails only its attempt.

# %%
# %%task count_primes(limit: int) -> int --runner process
count = 0
for n in range(2, limit):
    if all(n % d for d in range(2, int(n**0.5) + 1)):
        count += 1
return count

# %%
# %%workflow primes(limits: list) -> list
return await nc.gather(*[count_primes(limit) for limit in limits])

# %%
primes.start([1_000, 10_000, 20_000, 50_000]).result(timeout=120)

# %% [markdown]
# ## 2. A Dask cluster
#
# Give the engine a `DaskRunner` under a name, and name it on the tasks. A task
# defined in a cell lives in the notebook's `__main__`, which the workers cannot
# import: it travels by value (cloudpickle), with the globals it uses, such as
# `SCALE` below. `allowed-failures` 0 makes a dead worker fail its attempt at once
# rather than have Dask re-run it behind the history's back.

# %%
with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
client = Client(cluster, set_as_default=False)
nc.engine().add_runner("cluster", nc.DaskRunner(client))

# %%
SCALE = 3

# %%
# %%task score(fold: int) -> int --runner cluster --retry max_attempts=3
return sum(i * SCALE for i in range(fold * 100_000))

# %%
# %%workflow cross_validate(folds: int) -> list
return await nc.gather(*[score(fold) for fold in range(folds)])

# %%
cross_validate.start(6).result(timeout=120)

# %% [markdown]
# Every attempt's `TaskCompleted` event says where it ran: a pid on the process
# runner, a worker's address on Dask.

# %%
# %%conductor sql
SELECT name, count(*) AS attempts,
       count(*) FILTER (WHERE data->>'$.worker' LIKE 'tcp://%') AS on_dask_workers,
       count(*) FILTER (WHERE data->>'$.worker' LIKE 'pid %') AS in_child_processes
FROM events WHERE kind = 'TaskCompleted'
GROUP BY name ORDER BY name

# %% [markdown]
# ## 3. A rate-limited queue
#
# A queue is admission control in the engine, kept in the history file: here at
# most 2 attempts at once and 5 starts a second, paced: one every 0.2 s (`--burst N`
# would let N start at once after a quiet spell). A task joins it with `--queue`.
# While attempts wait, the execution's condition says so
# (`waiting for queue llm: 2 running, next slot in ...`).

# %%
# %conductor queues create llm --concurrency 2 --rate 5/second

# %%
# %%task ask(prompt: str) -> str --queue llm
time.sleep(0.1)  # the API call
return prompt.upper()

# %%
# %%workflow questions(prompts: list) -> list
return await nc.gather(*[ask(p) for p in prompts])

# %%
began = time.monotonic()
answers = questions.start([f"q{i}" for i in range(10)]).result(timeout=60)
print(answers)
print("10 starts, one every 0.2 s, took at least 1.8 s:", time.monotonic() - began >= 1.8)

# %%
# %conductor queues

# %% [markdown]
# ## Where next
#
# - [Scaling out](../docs/howto/scaling-out.md): what must be picklable or
#   importable, what at-least-once means on a cluster, how to start one.
# - `nbconductor queues list|create|update|delete` manages queues from a shell
#   ([CLI](../docs/cli.md)).

# %% [markdown]
# ## Clean up
#
# Close the Dask client and cluster (the engine never closes a client it was given),
# then unload the extension.

# %%
client.close()
cluster.close()

# %%
# %unload_ext nbconductor
shutil.rmtree(tutorial_folder)
