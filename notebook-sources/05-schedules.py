# %% [markdown]
# # Schedules: workflows on a timetable
#
# A **schedule** starts a workflow at set times: on a cron expression read in a
# time zone ("09:00 Paris time, Monday to Friday"), or every N seconds. The
# schedule lives in the history file next to the executions it starts, and each
# fire starts an ordinary execution you can watch, signal or cancel.
#
# In this notebook you will:
#
# 1. create a **cron** schedule and read its next fires;
# 2. see what the **overlap** policies do when a fire is due while the previous
#    run is still busy;
# 3. see what the **catch-up** policies do after the kernel was closed for a
#    while;
# 4. **pause** and **resume** a schedule, and look at them all in the
#    **schedules view**.
#
# The exact rules (cron syntax, daylight saving time, every policy) are in
# [Schedules](../docs/schedules.md); the [how-to guide](../docs/howto/schedules.md)
# walks through a complete example.

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
os.environ["NBCONDUCTOR_DB"] = os.path.join(tutorial_folder, "05-schedules.duckdb")

# %load_ext nbconductor

# %% [markdown]
# Schedules belong to the engine: `nc.engine().schedules`.

# %%
import asyncio
from datetime import UTC, datetime, timedelta

import nbconductor as nc

engine = nc.engine()

# %% [markdown]
# ## 1. A cron schedule
#
# The morning report runs at 09:00 Paris time on weekdays. Cron expressions have
# five fields (minute, hour, day of month, month, day of week) and are read in
# the schedule's `timezone`, daylight saving time included.

# %%
# %%task build_report(region: str) -> str
return f"report for {region}"

# %%
# %%workflow morning_report(region: str) -> str
return await build_report(region)

# %%
morning = engine.schedules.create(
    "morning-eu",
    morning_report,
    cron="0 9 * * MON-FRI",
    timezone="Europe/Paris",
    args=["eu"],
    note="for the 9 o'clock meeting",
)
morning.spec.cron, morning.spec.timezone, morning.spec.overlap, morning.spec.catchup

# %% [markdown]
# `describe` lists the next fires. Each fire starts an execution whose id is the
# schedule's id and the fire's time in UTC, so a fire repeated after a crash finds
# its execution already there and never runs twice. (The dates depend on when you
# run this notebook; the local time does not.)

# %%
for fire in engine.schedules.describe("morning-eu", n=5)["upcoming"]:
    local = datetime.fromisoformat(fire["local"])
    print(f"{fire['execution_id']}   ({local:%H:%M} in Paris)")

# %% [markdown]
# It also explains its policies in words:

# %%
print(engine.schedules.describe("morning-eu")["explanation"])

# %% [markdown]
# No need to wait for 09:00 to try it: `trigger_now` fires it once, now.

# %%
await engine.schedules.trigger_now("morning-eu")

# %% [markdown]
# ## 2. When runs overlap
#
# A fire is due, but the schedule's previous run is still open. The `overlap`
# policy decides:
#
# | `overlap` | the new fire |
# |---|---|
# | `skip` (default) | is skipped |
# | `buffer_one` | waits for the open run to close; at most one waits, later ones are skipped |
# | `buffer_all` | waits, however many there are |
# | `cancel_other` | cancels the open run, then starts |
# | `terminate_other` | terminates the open run, then starts |
# | `allow_all` | starts anyway |
#
# To see three of them side by side, here is an inventory sync that stays open
# until it is told it is `done`, and three schedules that fire it every second,
# three times each, starting two seconds from now:

# %%
# %%workflow sync_inventory(policy: str) -> str
await nc.signal("done")
return f"synced ({policy})"

# %%
SYNCS = ["sync-skip", "sync-buffer-one", "sync-allow-all"]
first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
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

# %% [markdown]
# Wait until the three fires are past (`next_fire` is `None` once a schedule has
# no fire left), then look at the schedules with `%conductor schedules`, the
# schedules view:

# %%
while any(engine.schedules.get(sync).next_fire for sync in SYNCS):
    await asyncio.sleep(0.1)

# %conductor schedules

# %% [markdown]
# - `sync-skip` started its first fire and skipped the other two: one run is open.
# - `sync-buffer-one` started its first fire, kept the second waiting ("1 waiting
#   to start"), and skipped the third.
# - `sync-allow-all` started all three: three runs are open at once.

# %%
for sync in SYNCS:
    info = engine.schedules.get(sync)
    print(f"{sync:<16} open: {len(info.open_runs)}  waiting to start: {len(info.buffered)}")

# %% [markdown]
# Finish the open syncs. As soon as `sync-buffer-one`'s run closes, its waiting
# fire starts:

# %%
from nbconductor.testing import wait_for

for sync in SYNCS:
    for run_id in engine.schedules.get(sync).open_runs:
        engine.signal(run_id, "done")

wait_for(lambda: not engine.schedules.get("sync-buffer-one").buffered)
buffered_run = engine.get(engine.schedules.get("sync-buffer-one").open_runs[0])
buffered_run

# %%
buffered_run.signal("done")
await buffered_run

# %% [markdown]
# ## 3. After downtime: catch-up
#
# A schedule fires only while an engine holds its history file, that is while
# the notebook's kernel runs (or a [headless worker](../docs/howto/cli-and-worker.md)
# does). When the kernel was closed over some fires, the `catchup` policy decides
# what the next engine does about the fires it **missed** (more than 60 s late):
#
# | `catchup` | on start-up after missed fires |
# |---|---|
# | `none` | skips them |
# | `latest` (default) | starts the most recent one |
# | `all` | starts each one, oldest first |
#
# Nobody wants to close a kernel for five hours in a tutorial, so this part uses a
# second engine, in memory, on a **virtual clock** that we move by hand
# (`nbconductor.testing.advance`), as the tests of your own schedules would. Its
# three hourly schedules differ only in their catch-up policy.

# %%
from nbconductor.testing import VirtualClock, advance

clock = VirtualClock(datetime(2030, 1, 7, 0, 0, tzinfo=UTC))
# In memory; this kernel's engine stays the default.
test_engine = nc.Engine(clock=clock, make_default=False)

for catchup in ["none", "latest", "all"]:
    test_engine.schedules.create(
        f"hourly-{catchup}",
        morning_report,
        every="1 hour",
        args=["us"],
        catchup=catchup,
        overlap="allow_all",
    )


def runs_of(schedule_id: str) -> list:
    return sorted(
        r.id.split("@")[1]
        for r in test_engine.list(limit=None)
        if r.id.startswith(schedule_id + "@")
    )


# %% [markdown]
# At 01:00 every schedule fires on time:

# %%
advance(test_engine, datetime(2030, 1, 7, 1, 0, tzinfo=UTC))
{schedule: runs_of(schedule) for schedule in ["hourly-none", "hourly-latest", "hourly-all"]}

# %% [markdown]
# Now the clock jumps from 01:00 to 06:30 at once, as if the kernel had been
# closed all that time: the fires of 02:00 to 06:00 were missed.

# %%
advance(test_engine, datetime(2030, 1, 7, 6, 30, tzinfo=UTC))
{schedule: runs_of(schedule) for schedule in ["hourly-none", "hourly-latest", "hourly-all"]}

# %%
test_engine.stop()

# %% [markdown]
# `none` started nothing, `latest` started the 06:00 fire only, `all` started
# every missed fire, oldest first. Catch-up only looks back `catchup_window`
# (one day by default), and catch-up fires go through the overlap policy like
# any other: with `skip`, catching up five fires starts the first and skips the
# rest while it runs.
#
# ## 4. Pause, resume, and the schedules view
#
# The office is closed for the holidays: pause the morning report. A paused
# schedule has no next fire and starts nothing by itself (`trigger_now` still
# fires it on demand).

# %%
info = engine.schedules.pause("morning-eu", note="office closed")
print(f"paused: {info.paused}, next fire: {info.next_fire}")

# %% [markdown]
# `%conductor schedules` shows every schedule: whether it is paused (and why), its
# trigger and policies in words, its next fires in its own time zone, how many
# fires started or were skipped, and its last runs. In a live notebook the view
# keeps itself up to date.

# %%
# %conductor schedules

# %% [markdown]
# Resuming fires again **from now on**: the fires it would have had while paused
# are not caught up.

# %%
info = engine.schedules.resume("morning-eu")
print(f"paused: {info.paused}, next fire: {info.next_fire}")

# %% [markdown]
# Schedules you no longer need are deleted; the executions they started stay in
# the history.

# %%
for sync in SYNCS:
    engine.schedules.delete(sync)
[info.id for info in engine.schedules.list()]

# %% [markdown]
# ## Where next
#
# - [Schedules](../docs/schedules.md): cron syntax, time zones and daylight saving
#   time, jitter, start and end times, every error message.
# - [How to run workflows on a schedule](../docs/howto/schedules.md), including
#   how to test one.
# - [06-recovery](06-recovery.ipynb): what an engine does when it opens a history
#   with open executions and schedules.

# %% [markdown]
# ## Clean up
#
# Unloading the extension stops the engine (running tasks get two seconds, the
# history is committed and the file closed). Then the tutorial's temporary
# history can go; in your own notebooks you would keep it, of course.

# %%
# %unload_ext nbconductor
shutil.rmtree(tutorial_folder)
