"""Runner and queue benchmarks W7, W8 and queue accuracy (issue #15).

- W7: 200 tasks of ~50 ms pure-Python CPU each: thread runner vs ``runner="process"``
  vs a DaskRunner on a 2-worker LocalCluster, and raw ``client.map`` + ``gather`` of
  the same function (the Dask floor).
- W8: a no-op task's round trip through each runner (a one-task workflow, median and
  p95), and a 1,000-task fan-out through Dask.
- Queue accuracy: 100 tasks at ``rate="20/second"`` (paced: one start every 50 ms, the
  last at 4.95 s; target 5 s ± 10 %), and the most attempts seen running at once, from
  the history, against ``concurrency=8``.

Run alone: ``python -m benchmarks.bench_runners`` (``W7_TASKS=40`` for a quick look).
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import datetime

import nbconductor as nc
from nbconductor.engine.payload import read_data
from nbconductor.storage.records import EventKind

TASKS = int(os.environ.get("W7_TASKS", "200"))
_LOOPS = [0]


def burn(loops: int) -> int:
    """Pure-Python CPU work (holds the GIL throughout)."""
    total = 0
    for i in range(loops):
        total += i * i % 7
    return total


def calibrate(ms: float = 50.0) -> int:
    """Loops that take ``ms`` on an idle core (the fastest of a few tries: on a loaded
    machine a try is slowed by the others, never sped up)."""
    loops = 200_000
    fastest = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        burn(loops)
        fastest = min(fastest, time.perf_counter() - t)
    return int(loops * ms / 1000 / fastest)


def _tasks(runner: str):
    @nc.task(name=f"cpu_{runner}", runner=runner)
    def cpu(loops: int) -> int:
        return burn(loops)

    @nc.task(name=f"noop_{runner}", runner=runner)
    def noop() -> None:
        return None

    @nc.workflow(name=f"crunch_{runner}")
    async def crunch(n: int, loops: int) -> int:
        return len(await nc.gather(*[cpu(loops) for _ in range(n)]))

    @nc.workflow(name=f"one_{runner}")
    async def one() -> None:
        await noop()

    @nc.workflow(name=f"fan_{runner}")
    async def fan(n: int) -> int:
        return len(await nc.gather(*[noop() for _ in range(n)]))

    return crunch, one, fan


def _latency(eng, one, samples: int = 30) -> tuple[float, float]:
    eng.start(one).result(120)  # warm: pools, children, workers
    times = []
    for _ in range(samples):
        t = time.perf_counter()
        eng.start(one).result(60)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def runners() -> list[tuple]:
    import dask
    from distributed import Client, LocalCluster

    loops = calibrate()
    rows = []
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
    client = Client(cluster, set_as_default=False)
    try:
        runner = nc.DaskRunner(client)
        eng = nc.Engine(None, runners={"dask": runner}, make_default=False)
        try:
            seconds = {}
            for name in ("thread", "process", "dask"):
                crunch, one, fan = _tasks(name)
                eng.start(crunch, 4, loops).result(300)  # warm
                t = time.perf_counter()
                eng.start(crunch, TASKS, loops).result(600)
                seconds[name] = time.perf_counter() - t
                median, p95 = _latency(eng, one)
                rows.append((f"W8 {name} no-op round trip median ms", median, ""))
                rows.append((f"W8 {name} no-op round trip p95 ms", p95, ""))
            client.gather(client.map(burn, [loops] * 4, pure=False))  # warm
            t = time.perf_counter()
            client.gather(client.map(burn, [loops] * TASKS, pure=False))
            raw = time.perf_counter() - t
            rows.append((f"W7 thread s ({TASKS} x 50 ms)", seconds["thread"], ""))
            rows.append((f"W7 process s ({TASKS} x 50 ms)", seconds["process"], ""))
            rows.append(
                ("W7 process speed-up vs thread", seconds["thread"] / seconds["process"], ">= 1.6")
            )
            rows.append(("W7 dask s (2 workers)", seconds["dask"], ""))
            rows.append(("W7 raw client.map s", raw, ""))
            rows.append(("W7 dask throughput vs raw map", raw / seconds["dask"], ">= 0.8"))
            _, _, fan = _tasks("dask")
            eng.start(fan, 10).result(120)
            t = time.perf_counter()
            eng.start(fan, 1000).result(600)
            rows.append(("W8 dask fan-out 1,000 tasks/s", 1000 / (time.perf_counter() - t), ""))
        finally:
            eng.stop(grace=0)
    finally:
        client.close()
        cluster.close()
    return rows


@nc.task(name="queued_instant", queue="rate")
def queued_instant() -> None:
    return None


@nc.task(name="queued_busy", queue="eight")
def queued_busy() -> None:
    time.sleep(0.05)  # the work being simulated


@nc.workflow(name="rate_fan")
async def rate_fan(n: int) -> None:
    await nc.gather(*[queued_instant() for _ in range(n)])


@nc.workflow(name="busy_fan")
async def busy_fan(n: int) -> None:
    await nc.gather(*[queued_busy() for _ in range(n)])


def _most_at_once(history) -> int:
    points = []
    for e in history:
        if e.kind is EventKind.TASK_COMPLETED:
            points.append((datetime.fromisoformat(read_data(e.data)["started_at"]), 1))
            points.append((e.at, -1))
    best = now = 0
    for _, step in sorted(points):
        now += step
        best = max(best, now)
    return best


def queues() -> list[tuple]:
    eng = nc.Engine(None, make_default=False)
    try:
        eng.queues.create("rate", rate="20/second")
        eng.queues.create("eight", concurrency=8)
        t = time.perf_counter()
        eng.start(rate_fan, 100).result(60)
        rate_s = time.perf_counter() - t
        h = eng.start(busy_fan, 200)
        h.result(60)
        most = _most_at_once(h.history())
    finally:
        eng.stop(grace=0)
    return [
        ("queue: 100 tasks at 20/second, s", rate_s, "5.0 +- 10 % (a start every 50 ms)"),
        ("queue: most running at once (limit 8)", most, "== 8"),
    ]


def run() -> list[tuple]:
    return queues() + runners()


if __name__ == "__main__":
    for label, value, target in run():
        print(f"{label:44} {value:12.3f}   {target}")
