"""The torture workload: one life of a process that is SIGKILLed at random moments.

Run as ``python torture_workload.py DB LOG``. Each life opens the engine on ``DB``,
starts every execution of the workload (idempotently, by fixed ids), sends the signals
not yet acknowledged, and prints ``done`` once every execution has closed. Tasks and
the signal sender append fsync'ed lines to ``LOG``, the side-effect log that the
harness checks the history against.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import nbconductor as nc
from nbconductor.engine.engine import Engine
from nbconductor.storage.records import EventKind

LOG_PATH = ""
_log_lock = threading.Lock()

COUNT = 2  # executions of each kind
SIGNALS = 4  # signals each signal workflow collects


def log(*words: object) -> None:
    """Append one line to the side-effect log, durably, before going on."""
    line = " ".join(str(w) for w in words) + "\n"
    with _log_lock:
        fd = os.open(LOG_PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)


def _starts(tag: str) -> int:
    with open(LOG_PATH) as f:
        return sum(1 for line in f if line.split()[:2] == ["start", tag])


@nc.task
def square(tag: str, k: int) -> int:
    log("start", tag, time.time())
    return k * k


@nc.task
def cube(tag: str, k: int) -> int:
    log("start", tag, time.time())
    return k**3


@nc.task(retry=nc.Retry(initial=0.05, backoff=1.0, max_attempts=10))
def flaky(tag: str) -> str:
    log("start", tag, time.time())
    if _starts(tag) < 3:
        raise ConnectionError("fails on its first two attempts")
    return tag


@nc.workflow
async def chain(i: int) -> int:
    total = i
    for k in range(4):
        total += await square(f"chain-{i}/{k}", k)
    return total


@nc.workflow
async def fan(i: int) -> int:
    parts = await nc.gather(*(cube(f"fan-{i}/{k}", k) for k in range(5)))
    return sum(parts)


@nc.workflow
async def timer(i: int) -> str:
    await nc.sleep(0.2)
    await square(f"timer-{i}/0", i)
    return f"slept-{i}"


@nc.workflow
async def retry(i: int) -> str:
    return "ok-" + await flaky(f"retry-{i}/0")


@nc.workflow
async def collect(i: int) -> list:
    got = []
    while len(got) < SIGNALS:
        got.append(await nc.signal("item"))
    return got


@nc.workflow
async def kid(i: int) -> int:
    return 10 * i + await square(f"kid-{i}/0", 0)


@nc.workflow
async def parent(i: int) -> int:
    return await nc.child(kid, i) + 1


@nc.workflow
async def renewing(i: int, n: int) -> int:
    await square(f"renew-{i}-{n}/0", n)
    if n < 3:
        nc.continue_as_new(i, n + 1)
    return n


@nc.workflow
async def ticked() -> str:
    return "tick"


MAX_ROUNDS = 25  # each life adds a round of executions, up to this many


def indices(log_path: str) -> range:
    """The execution indices so far: COUNT per life logged, up to MAX_ROUNDS lives."""
    with open(log_path) as f:
        lives = sum(1 for line in f if line.startswith("life"))
    return range(COUNT * min(max(lives, 1), MAX_ROUNDS))


def expected(n: range) -> dict:
    """Execution id -> its result, for the indices ``n``."""
    return {
        **{f"chain-{i}": 14 + i for i in n},
        **{f"fan-{i}": 100 for i in n},
        **{f"timer-{i}": f"slept-{i}" for i in n},
        **{f"retry-{i}": f"ok-retry-{i}/0" for i in n},
        **{f"sig-{i}": [f"sig-{i}:{v}" for v in range(SIGNALS)] for i in n},
        **{f"parent-{i}": 10 * i + 1 for i in n},
    }


def renewed(n: range) -> dict:
    """Continue-as-new chains (by their first run's id) -> their last run's result."""
    return {f"renew-{i}": 3 for i in n}


SCHEDULE = "tick"


def _start_all(eng: Engine, n: range) -> list:
    starts = [
        (chain, "chain"),
        (fan, "fan"),
        (timer, "timer"),
        (retry, "retry"),
        (collect, "sig"),
        (parent, "parent"),
    ]
    handles = [eng.start(wf, i, id=f"{prefix}-{i}") for wf, prefix in starts for i in n]
    handles += [eng.start(renewing, i, 0, id=f"renew-{i}") for i in n]
    if SCHEDULE not in {info.spec.id for info in eng.schedules.list()}:
        eng.schedules.create(SCHEDULE, ticked, every="1s", catchup="all", overlap="allow_all")
    return handles


def _acked() -> set[str]:
    with open(LOG_PATH) as f:
        return {line.split()[1] for line in f if line.startswith("ack ")}


def _send_signals(eng: Engine, n: range) -> None:
    acked = _acked()
    for i in n:
        execution = f"sig-{i}"
        for v in range(SIGNALS):
            value = f"{execution}:{v}"
            if value in acked:
                continue
            # A signal committed before a kill but not yet acknowledged is in the
            # history: acknowledge it instead of sending it twice (as a careful client).
            delivered = any(
                e.kind is EventKind.SIGNAL_RECEIVED and value in e.data
                for e in eng.history(execution)
            )
            if not delivered:
                eng.signal(execution, "item", value)
            log("ack", value)


def main(db: str, log_path: str) -> None:
    global LOG_PATH
    LOG_PATH = log_path
    log("life", os.getpid(), time.time())
    n = indices(LOG_PATH)
    eng = Engine(db)
    print("opened", flush=True)
    handles = _start_all(eng, n)
    _send_signals(eng, n)
    for handle in handles:
        handle.result(timeout=120)
    print("done", flush=True)
    eng.stop(grace=0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
