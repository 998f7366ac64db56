"""Engine benchmarks W1, W2, W3, W5, idle CPU and RSS (issue targets in the table).

Each workload runs in a fresh process on a fresh DuckDB file, so numbers do not
depend on what ran before. Run alone: ``python -m benchmarks.bench_engine``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbconductor as nc


@nc.task
def noop(i: int = 0) -> None:
    return None


@nc.workflow
async def sequential(n: int) -> int:
    for i in range(n):
        await noop(i)
    return n


@nc.workflow
async def three_steps() -> None:
    for i in range(3):
        await noop(i)


@nc.workflow
async def fan_out(n: int) -> int:
    await nc.gather(*[noop(i) for i in range(n)])
    return n


@nc.workflow
async def resumable(n: int, pause: float) -> int:
    for i in range(n):
        await noop(i)
    await nc.sleep(pause)
    await noop(n)
    return n


def w1(db: Path) -> dict:
    with nc.Engine(db) as eng:
        eng.start(sequential, 10).result(60)  # warm up the pool and the file
        t = time.perf_counter()
        eng.start(sequential, 1000).result(120)
        elapsed = time.perf_counter() - t
    return {"W1 ms per sequential step": elapsed / 1000 * 1000}


def w2(db: Path) -> dict:
    with nc.Engine(db) as eng:
        eng.start(three_steps).result(60)
        t = time.perf_counter()
        handles = [eng.start(three_steps) for _ in range(500)]
        for h in handles:
            h.result(120)
        elapsed = time.perf_counter() - t
    return {"W2 tasks/s (500 wf x 3 tasks)": 1500 / elapsed}


def w3(db: Path) -> dict:
    with nc.Engine(db) as eng:
        eng.start(fan_out, 10).result(60)
        times = []
        for _ in range(5):
            t = time.perf_counter()
            eng.start(fan_out, 200).result(60)
            times.append(time.perf_counter() - t)
    return {"W3 s for gather of 200": statistics.median(times)}


@nc.workflow
async def awaits_signal() -> str:
    return await nc.signal("go")


def w4(db: Path) -> dict:
    # handle.signal() until the workflow resumed and completed, 100 times in sequence.
    with nc.Engine(db) as eng:
        times = []
        for i in range(110):
            h = eng.start(awaits_signal, id=f"w4-{i}")
            deadline = time.monotonic() + 10
            while h.waiting_for != ["go"]:
                if time.monotonic() > deadline:
                    raise RuntimeError("W4: the workflow never waited for its signal")
                threading.Event().wait(0.0002)
            t = time.perf_counter()
            h.signal("go", i)
            h.result(10)
            times.append((time.perf_counter() - t) * 1000)
    times = sorted(times[10:])
    return {
        "W4 signal round trip median ms": statistics.median(times),
        "W4 signal round trip p95 ms": times[int(len(times) * 0.95) - 1],
    }


def w5_prepare(db: Path) -> dict:
    eng = nc.Engine(db)
    h = eng.start(resumable, 1000, 3600.0, id="resume-me")
    deadline = time.monotonic() + 120
    while not any(e.kind.value == "TimerStarted" for e in eng.history("resume-me")[-3:]):
        if time.monotonic() > deadline:
            raise RuntimeError("W5 preparation did not reach the sleep")
        threading.Event().wait(0.05)
    eng.stop()
    return {"prepared": h.id}


def w5(db: Path) -> dict:
    # Measured in this fresh process: open the file, replay 1,000 completed tasks, and
    # be live again (the workflow is waiting on its timer with its runtime rebuilt).
    t = time.perf_counter()
    eng = nc.Engine(db)
    live = eng.executions.get("resume-me")
    deadline = time.monotonic() + 60
    while live is None or live.runtime is None or not live.timers:
        if time.monotonic() > deadline:
            raise RuntimeError("W5: the execution did not resume")
        threading.Event().wait(0.0005)
        live = eng.executions.get("resume-me")
    elapsed = time.perf_counter() - t
    eng.stop()
    return {"W5 s to resume 1,000-task workflow": elapsed}


def idle_cpu(db: Path) -> dict:
    with nc.Engine(db) as eng:
        eng.start(sequential, 5).result(60)
        before = time.process_time()
        threading.Event().wait(10)
        used = time.process_time() - before
    return {"idle CPU s over 10 s": used}


def rss_prepare(db: Path) -> dict:
    with nc.Engine(db) as eng:
        handles = [eng.start(three_steps) for _ in range(10_000)]
        for h in handles:
            h.result(600)
    return {"prepared": len(handles)}


def rss_closed(db: Path) -> dict:
    # In a fresh process: what an engine holding a file of 10,000 closed executions costs.
    with nc.Engine(db) as eng:
        eng.start(sequential, 5).result(60)
        rss_kb = _current_rss_kb()
        assert eng.store.count_executions() == 10_001
    return {"RSS MB, engine on 10,000 closed": rss_kb / 1024}


def _current_rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


WORKLOADS = {
    "W1": w1,
    "W2": w2,
    "W3": w3,
    "W4": w4,
    "W5-prepare": w5_prepare,
    "W5": w5,
    "idle": idle_cpu,
    "rss-prepare": rss_prepare,
    "rss": rss_closed,
}
TARGETS = {
    "W1 ms per sequential step": "<= 1.5",
    "W2 tasks/s (500 wf x 3 tasks)": ">= 1500",
    "W3 s for gather of 200": "<= 0.25",
    "W4 signal round trip median ms": "<= 5",
    "W4 signal round trip p95 ms": "<= 15",
    "W5 s to resume 1,000-task workflow": "<= 0.5",
    "idle CPU s over 10 s": "~ 0",
    "RSS MB, engine on 10,000 closed": "<= 80",
}


def _in_child(name: str, db: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_engine", "--one", name, str(db)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
        timeout=900,
    )
    if out.returncode != 0:
        raise RuntimeError(f"benchmark {name} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(skip: tuple[str, ...] = ()) -> list[tuple[str, float, str]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("W1", "W2", "W3", "W4", "W5", "idle", "rss"):
            if name in skip:
                continue
            db = Path(tmp) / f"{name}.duckdb"
            if name in ("W5", "rss"):
                _in_child(f"{name}-prepare", db)
            for key, value in _in_child(name, db).items():
                if not key.startswith("_"):
                    rows.append((key, value, TARGETS.get(key, "")))
    return rows


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:
        print(json.dumps(WORKLOADS[argv[1]](Path(argv[2]))))
        return 0
    skip = tuple(argv[argv.index("--skip") + 1].split(",")) if "--skip" in argv else ()
    for name, value, target in run(skip):
        print(f"{name:40} {value:12.3f}   target {target}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main(sys.argv[1:]))
