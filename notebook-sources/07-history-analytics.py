# %% [markdown]
# # History analytics: SQL and a chart over what happened
#
# Every step of every execution is a row in the history file, a DuckDB
# database. That makes the history more than a recovery log: it is a dataset you
# can query to see which tasks fail, how often they are retried and how long
# they take.
#
# In this notebook you will:
#
# 1. run a small batch of file imports, some of which hit trouble;
# 2. query the history with `%conductor sql`: outcomes, failures, retries;
# 3. draw bar charts of attempts, failure rates and durations by task, with no
#    plotting library.
#
# The notebook introduces the tables as it goes ([Architecture](../docs/architecture.md#4-durability-and-the-duckdb-store)
# lists them). `%conductor sql` only reads: a query that would write is refused,
# so no query can damage the history.

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
os.environ["NBCONDUCTOR_DB"] = os.path.join(tutorial_folder, "07-history-analytics.duckdb")

# %load_ext nbconductor

# %% [markdown]
# ## A batch of imports, with some trouble
#
# Twelve files are imported, each by its own execution: download, parse, load.
# The trouble is scripted so that every run of this notebook tells the same
# story: the file server drops some connections (those downloads are retried),
# two files are corrupt (parsing them fails for good, a `ValueError` being
# non-retryable), and the database is busy once.

# %%
import asyncio
import time
from collections import Counter

FILES = [f"file-{n:02d}" for n in range(1, 13)]
# Failed attempts per file:
DROPPED = {"file-03": 1, "file-06": 1, "file-07": 2, "file-09": 1, "file-12": 1}
CORRUPT = {"file-05", "file-11"}
BUSY = {"file-08": 1}

# %%
# %%task download(name: str) -> str --retry initial=0.1s,max_attempts=4
time.sleep(0.2)
if DROPPED.get(name, 0) > 0:
    DROPPED[name] -= 1
    raise ConnectionError(f"connection reset while downloading {name}")
return f"{name}.csv"

# %%
# %%task parse(path: str) -> int --retry initial=0.1s,max_attempts=4,non_retryable=ValueError
time.sleep(0.05)
if path.removesuffix(".csv") in CORRUPT:
    raise ValueError(f"{path} is corrupt: unexpected end of file")
return 10 * int(path[5:7])  # rows in the file

# %%
# %%task load(name: str, rows: int) -> int --retry initial=0.1s,max_attempts=4
time.sleep(0.1)
if BUSY.get(name, 0) > 0:
    BUSY[name] -= 1
    raise ConnectionError("database is busy")
return rows

# %%
# %%workflow import_file(name: str) -> int
path = await download(name)
rows = await parse(path)
return await load(name, rows)

# %% [markdown]
# Start the twelve imports at once and wait for them all. A handle is awaitable,
# so `asyncio.gather` waits for several; `return_exceptions=True` collects the
# failures instead of stopping at the first.

# %%
runs = [import_file.start(name, id=f"import-{name}") for name in FILES]
outcomes = await asyncio.gather(*runs, return_exceptions=True)
Counter(type(outcome).__name__ for outcome in outcomes)

# %% [markdown]
# ## Ask the history
#
# Three tables hold everything: `executions` (one row per execution: workflow,
# status, times, input, result, error), `events` (one row per recorded step:
# `execution_id`, `seq`, `kind`, `"at"`, `name`, `attempt` and a JSON `data`
# column) and `definitions` (every version of every workflow and task, with its
# source). `%conductor sql` runs one read-only query; with `%%conductor sql` the
# query takes the whole cell.
#
# First, how did the imports end?

# %%
# %conductor sql SELECT status, count(*) AS executions FROM executions GROUP BY status ORDER BY status

# %% [markdown]
# Which ones failed, and why? The `error` column is JSON; DuckDB's `->>`
# operator reads a field of it.

# %%
# %%conductor sql
SELECT id, error->>'$.message' AS error
FROM executions
WHERE status = 'failed'
ORDER BY id

# %% [markdown]
# Every attempt of every task ends with a `TaskCompleted` or a `TaskFailed`
# event; a `TaskFailed` whose `final` field is true is one that was not retried.
# Counting them by task gives each task's failure rate:

# %%
# %%conductor sql
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

# %% [markdown]
# The result is also the cell's value. `_` picks it up: a table with `.columns`,
# The result is also the cell's value, and `_` picks it up: a DuckDB relation
# over the history. It runs its query when asked, and turns into what you need:
# `.df()` a pandas DataFrame, `.pl()` a polars one, `.arrow()` Arrow record
# batches, `.fetchall()` tuples and `.to_dicts()` one dict per row. The same
# relation comes from Python with `nbconductor.engine().sql("SELECT ...")`.

# %%
by_task = _.to_dicts()
by_task[0]

# %% [markdown]
# And which imports needed more than one attempt at some step?

# %%
# %%conductor sql
SELECT execution_id, name AS task, max(attempt) AS attempts
FROM events
WHERE kind IN ('TaskCompleted', 'TaskFailed')
GROUP BY execution_id, name
HAVING max(attempt) > 1
ORDER BY execution_id, task

# %% [markdown]
# ## A chart without a plotting library
#
# A bar chart is a few lines of Python: an object whose `_repr_html_` draws
# the bars as HTML for the notebook, and whose `repr` draws them with
# characters for any other viewer (a terminal, a diff, a test). Each bar can be
# made of segments, here the attempts that succeeded and those that failed.

# %%
import html


class BarChart:
    """Horizontal bars, each made of segments, as HTML and as text."""

    COLORS = ("#4c78a8", "#e45756", "#f58518")
    MARKS = ("█", "░", "▒")

    def __init__(self, title, labels, segments, unit=""):
        self.title, self.labels, self.unit = title, labels, unit
        self.segments = segments  # {segment name: one value per label}
        self.totals = [sum(values) for values in zip(*segments.values(), strict=True)]

    def _legend(self, marks):
        return "   ".join(
            f"{mark} {name}" for mark, name in zip(marks, self.segments, strict=False)
        )

    def __repr__(self):
        top, width = max(self.totals) or 1, 40
        pad = max(len(label) for label in self.labels)
        lines = [self.title, ""]
        for i, label in enumerate(self.labels):
            bar = "".join(
                mark * round(width * values[i] / top)
                for mark, values in zip(self.MARKS, self.segments.values(), strict=False)
            )
            lines.append(f"{label:<{pad}}  {bar:<{width}}  {self.totals[i]:g}{self.unit}")
        if len(self.segments) > 1:
            lines += ["", self._legend(self.MARKS)]
        return "\n".join(lines)

    def _repr_html_(self):
        top = max(self.totals) or 1
        rows = []
        for i, label in enumerate(self.labels):
            bar = "".join(
                f"<div title='{html.escape(name)}: {values[i]:g}' style='display:inline-block;"
                f"height:1em;width:{100 * values[i] / top:.2f}%;background:{color}'></div>"
                for name, values, color in zip(
                    self.segments, self.segments.values(), self.COLORS, strict=False
                )
            )
            rows.append(
                f"<tr><td style='text-align:left'>{html.escape(label)}</td>"
                f"<td style='width:24em;text-align:left;white-space:nowrap'>{bar}</td>"
                f"<td style='text-align:right'>{self.totals[i]:g}{html.escape(self.unit)}</td></tr>"
            )
        legend = ""
        if len(self.segments) > 1:
            legend = (
                "<p style='font-size:smaller'>"
                + "&emsp;".join(
                    f"<span style='color:{color}'>■</span> {html.escape(name)}"
                    for name, color in zip(self.segments, self.COLORS, strict=False)
                )
                + "</p>"
            )
        return f"<p><strong>{html.escape(self.title)}</strong></p><table>{''.join(rows)}</table>{legend}"


# %% [markdown]
# Attempts by task, split into those that succeeded and those that failed:

# %%
tasks = [row["task"] for row in by_task]
BarChart(
    "Attempts by task",
    tasks,
    {
        "succeeded": [row["attempts"] - row["failed"] for row in by_task],
        "failed": [row["failed"] for row in by_task],
    },
)

# %%
BarChart(
    "Failure rate by task",
    tasks,
    {"failed attempts": [row["failure_rate"] for row in by_task]},
    unit=" %",
)

# %% [markdown]
# `download` fails most often, but every one of its failures was retried
# successfully (`gave_up` is 0): a flaky network. `parse` fails less often, but
# for good: corrupt files, which no retry will fix. That difference is what a
# retry policy and `non_retryable` are for
# ([Timeouts and retries](../docs/howto/timeouts-and-retries.md)).
#
# ## How long do tasks take?
#
# A task event's `"at"` is when the attempt ended, and its data holds
# `started_at`: their difference is the attempt's duration. Durations are
# measured, so they differ a little from run to run (the notebook tests do not
# compare this cell's output).

# %% tags=["nbval-ignore-output"]
# durations = %conductor sql SELECT name AS task, round(1000 * avg(epoch("at") - epoch((data->>'$.started_at')::TIMESTAMPTZ))) AS avg_ms FROM events WHERE kind = 'TaskCompleted' GROUP BY name ORDER BY name
display(durations)
BarChart(
    "Average duration of a successful attempt",
    [row["task"] for row in durations.to_dicts()],
    {"ms": [row["avg_ms"] for row in durations.to_dicts()]},
    unit=" ms",
)

# %% [markdown]
# The same queries work outside the notebook, on the same file, with the
# `nbconductor` command: `nbconductor sql "SELECT ..."` (with `--csv` or `--json`),
# or `nbconductor export --parquet DIR` to hand the whole history to another tool
# ([CLI and headless worker](../docs/howto/cli-and-worker.md)). It finds the file
# the way the kernel did: `--db PATH`, else `NBCONDUCTOR_DB`, else the one
# `.nbconductor/*.duckdb` in the current folder. This tutorial's history is a
# temporary file that its last cell deletes, so ask now, while the kernel holds
# it; the command below inherits the kernel's `NBCONDUCTOR_DB` (in a terminal,
# give the path printed here with `--db`). Your own notebooks keep their history
# in `.nbconductor/<notebook name>.duckdb`, where `nbconductor list` in the
# notebook's folder finds it.

# %%
import sys

print(os.environ["NBCONDUCTOR_DB"])
# !{sys.executable} -m nbconductor.cli sql "SELECT workflow, status, count(*) AS executions FROM executions GROUP BY ALL ORDER BY ALL" --csv

# %% [markdown]
# ## Keep the history small
#
# History grows with every execution. `%conductor prune --closed-before 30d`
# deletes executions that closed more than 30 days ago, with their events, and
# gives the space back to the file; `--dry-run` only counts them. An execution
# goes with its whole family (its parent, its children, the runs of a
# continue-as-new chain) once every member has closed, never while one is open.
# From Python it is `engine.prune("30d")`, and `Engine(retention="30d")` prunes
# on its own ([Operations](../docs/operations.md#retention)). Everything here
# closed a moment ago, so nothing is due yet:

# %%
import nbconductor

report = nbconductor.engine().prune("30d", dry_run=True)
report.executions, report.kept

# %% [markdown]
# ## Where next
#
# - [Operations](../docs/operations.md): where the history lives, how big it
#   grows, backups.
# - [01-quickstart](01-quickstart.ipynb) to [06-recovery](06-recovery.ipynb): the
#   other tutorials, if you came here first.

# %% [markdown]
# ## Clean up
#
# Unloading the extension stops the engine (running tasks get two seconds, the
# history is committed and the file closed). Then the tutorial's temporary
# history can go; in your own notebooks you would keep it, of course.

# %%
# %unload_ext nbconductor
shutil.rmtree(tutorial_folder)
