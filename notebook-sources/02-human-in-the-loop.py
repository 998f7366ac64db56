# %% [markdown]
# # Human in the loop: wait for an approval, with a deadline
#
# Many processes stop to ask a person: a manager approves a discount, an editor
# signs off an article, a customer confirms an order. The person may answer in a
# minute or next week, and the kernel may restart in between. nbconductor waits
# for them with a **signal**: a named message, recorded in the history like
# every other step, so nothing is lost while the workflow waits.
#
# In this notebook you will:
#
# 1. write a workflow that drafts an offer and waits for a manager's `approve`
#    signal, at most two days;
# 2. send the signal from code, from the `%conductor` magic and (in a live
#    notebook) from the button in the execution's view;
# 3. watch the deadline run out and the workflow take its other branch.
#
# The how-to guide on [signals](../docs/howto/signals.md) covers more: streams of
# signals, updates that return a value, queries and conditions.

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
os.environ["NBCONDUCTOR_DB"] = os.path.join(tutorial_folder, "02-human-in-the-loop.duckdb")

# %load_ext nbconductor

# %% [markdown]
# Three tasks do the work: draft the offer, send it, withdraw it.

# %%
import nbconductor as nc

LIST_PRICE = 1000.0

# %%
# %%task draft_offer(customer: str, discount: float) -> dict
return {"customer": customer, "discount": discount, "price": LIST_PRICE * (1 - discount)}

# %%
# %%task send_offer(offer: dict) -> str
return f"offer sent to {offer['customer']}: {offer['price']:.2f} EUR"

# %%
# %%task withdraw_offer(offer: dict, reason: str) -> str
return f"offer to {offer['customer']} withdrawn: {reason}"

# %% [markdown]
# ## A workflow that waits for a decision
#
# `await nc.signal("approve", timeout=patience)` waits for the next signal called
# `approve` and returns its payload, or `None` when the time runs out first. The
# timeout is a durable timer: its due time is in the history, so a restart does
# not reset the clock.
#
# `--signals 'approve={"ok": true, "by": ""}'` declares the signal the workflow
# expects and what it carries (an example of its payload), so that the
# execution's view can offer a form for it: a checkbox `ok` and a field `by`.
# `nc.state` is a small dictionary the workflow shares with whoever watches it.

# %%
# %%workflow discount_approval(customer: str, discount: float, patience: str = "2 days") -> str --signals 'approve={"ok": true, "by": ""}'
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

# %% [markdown]
# ## Start it and let it wait
#
# ACME asks for 15 % off. The workflow drafts the offer in a moment, then waits;
# it may wait for two days, costing nothing but a row in the history.

# %%
acme = discount_approval.start("ACME", 0.15, id="offer-acme")
acme

# %% [markdown]
# `acme.waiting_for` names the signals the execution is waiting for right now.
# Here we wait until the draft is done and the workflow waits (in a notebook of
# your own you would just look at the view):

# %%
from nbconductor.testing import wait_for

wait_for(lambda: acme.waiting_for == ["approve"])
acme.waiting_for, acme.state

# %% [markdown]
# `%conductor show` says the same, with the execution's input:

# %%
# %conductor show offer-acme

# %% [markdown]
# ## Send the signal
#
# **In a live notebook**, the execution's view shows a button for each signal
# the workflow declares or waits for, with the form its declaration asks for
# (or a field for the payload as JSON when it says nothing). Ticking `ok`,
# typing `ann` in `by` and clicking `approve` does what the next cell does; an
# empty `by` sends nothing and says so. (The kernel handles a click between cells, or while a cell *awaits*: wait
# with `await acme`, not with the blocking `acme.result()`, while someone may
# click.)
#
# From code, the handle sends it. `signal()` returns once the signal is recorded
# in the history, so from then on it survives a crash:

# %%
acme.signal("approve", {"ok": True, "by": "ann"})
await acme

# %% [markdown]
# The history shows what happened: the signal's timeout started as a timer, the
# signal arrived, and the timer was cancelled.

# %%
for event in acme.history():
    print(f"{event.seq:>2}  {event.kind.value:<18} {event.name or ''}")

# %% [markdown]
# ## From the magic, and before the workflow asks
#
# `%conductor signal ID NAME PAYLOAD` does the same from a cell, with the
# payload as JSON or a Python literal. A signal may also arrive *before* the
# workflow waits for it: it is kept in the history and delivered when the
# workflow gets there. Globex's rejection is sent the moment the execution starts,
# without waiting for the workflow to ask:

# %%
globex = discount_approval.start("Globex", 0.40, id="offer-globex")
# %conductor signal offer-globex approve {"ok": false, "by": "bob"}

# %%
await globex

# %% [markdown]
# ## When nobody answers
#
# Initech's request lands on a holiday. To see the deadline run out without
# waiting two days, this execution gets one second of patience:

# %%
initech = discount_approval.start("Initech", 0.30, patience="1 second", id="offer-initech")
await initech

# %% [markdown]
# This time the timer fired and no signal was received:

# %%
[event.kind.value for event in initech.history()]

# %% [markdown]
# A decision that comes too late is refused: the execution has closed, and a
# signal never reopens it.

# %%
try:
    initech.signal("approve", {"ok": True, "by": "carol"})
except nc.ExecutionClosed as error:
    print(error)

# %% [markdown]
# One detail to remember: `nc.signal(..., timeout=...)` returns `None` when the
# time runs out, and a signal sent *without* a payload delivers `None` too. When
# a workflow waits with a timeout, send a payload (`True`, a dict) so that the
# two cannot be confused.
#
# Here are the three offers:

# %%
# %conductor list

# %% [markdown]
# ## Where next
#
# - Real deadlines are hours or days; they survive restarts like any durable
#   timer. [06-recovery](06-recovery.ipynb) shows an execution carrying on after
#   its engine stopped.
# - [Signals](../docs/howto/signals.md): wait for one of several signals, receive
#   a stream of them, answer queries, accept updates that return a value.
# - [03-order-saga](03-order-saga.ipynb): undo completed steps when a later one
#   fails or the order is cancelled.

# %% [markdown]
# ## Clean up
#
# Unloading the extension stops the engine (running tasks get two seconds, the
# history is committed and the file closed). Then the tutorial's temporary
# history can go; in your own notebooks you would keep it, of course.

# %%
# %unload_ext nbconductor
shutil.rmtree(tutorial_folder)
