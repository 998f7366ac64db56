"""Engine benchmarks W1-W5, idle CPU and RSS, each as its workload is defined.

Every sample is one fresh process on a fresh DuckDB file, with no warm-up the
definition does not allow, and its result checked:

- W1: ms per sequential step of one workflow awaiting n no-op tasks one by one
  (timed from ``start()`` to the result; n = 100, 1,000, 10,000).
- W1 beside a busy thread: the same, n = 100, while another thread of the process runs
  Python without pause (what a task or the user's code computing does to commits).
- W2: tasks/s for 500 workflows x 3 no-op tasks started at once, and the peak RSS
  of that process.
- W3: seconds for one workflow gathering 200 no-op tasks.
- W4: the signal round trip (``handle.signal()`` until the resumed workflow's result
  is back), timed only once the start is committed and the workflow waits; every
  sample is kept.
- W5: seconds from process start (before the interpreter runs) to a resumed
  workflow that had completed n tasks being done (n = 100, 1,000, 10,000).
- cold start: seconds from process start to the result of a one-task workflow on a
  fresh file (the import, the file's creation, the engine's start, one step).
- idle CPU over 10 s, and the RSS of an engine over 10,000 closed executions.
- the floor under W1 and W4: one store commit of two events (what a signal that ends
  its workflow commits), measured the same way, so that W4 can be read against it;
  back to back, and after 10 ms of idleness as W4 meets it.
- the RSS floor: a process that imported nbconductor and opened a history file.

The package and this module are compiled to bytecode first, as installing a package
does: with PYTHONDONTWRITEBYTECODE set (as in some environments), every fresh process
would otherwise compile the sources again, ~0.2 s that W5 would count.

Each workload runs ``--runs`` times (default 3); the table gives the median, the
spread (min-max) and the 1-minute load average before the first run, because the
machine may be shared. Run: ``python -m benchmarks.bench_engine [--runs 5]
[--only W1,W4] [--quick]`` (``--quick`` drops the 10,000 sizes).
"""

from __future__ import annotations

import compileall
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbconductor as nc


@nc.task
def bench_noop(i: int = 0) -> int:
    return i


@nc.workflow
async def bench_sequential(n: int) -> int:
    total = 0
    for i in range(n):
        total += await bench_noop(i)
    return total


@nc.workflow
async def bench_three_steps(k: int) -> int:
    total = 0
    for i in range(3):
        total += await bench_noop(i)
    return total + k


@nc.workflow
async def bench_fan_out(n: int) -> int:
    return sum(await nc.gather(*[bench_noop(i) for i in range(n)]))


@nc.workflow
async def bench_resumable(n: int, pause: float) -> int:
    total = 0
    for i in range(n):
        total += await bench_noop(i)
    await nc.sleep(pause)
    return total + await bench_noop(n)


@nc.workflow
async def bench_awaits_signal() -> str:
    return await nc.signal("go")


def _wait(condition, what: str, timeout: float = 60.0, step: float = 0.0002) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"benchmark: {what} within {timeout} s")
        threading.Event().wait(step)


# ----------------------------------------------------------------- the workloads


def w1(db: Path, n: str) -> dict:
    steps = int(n)
    with nc.Engine(db) as eng:
        t = time.perf_counter()
        result = eng.start(bench_sequential, steps).result(600)
        elapsed = time.perf_counter() - t
    assert result == steps * (steps - 1) // 2, result
    return {"value": elapsed / steps * 1000}


def w1_busy(db: Path, n: str) -> dict:
    """W1 while another thread of the process runs Python without pause (a task or the
    user's own code computing in the kernel)."""
    steps = int(n)
    stop = threading.Event()

    def compute() -> None:
        x = 0
        while not stop.is_set():
            x += 1

    with nc.Engine(db) as eng:
        busy = threading.Thread(target=compute)
        busy.start()
        try:
            t = time.perf_counter()
            result = eng.start(bench_sequential, steps).result(600)
            elapsed = time.perf_counter() - t
        finally:
            stop.set()
            busy.join()
    assert result == steps * (steps - 1) // 2, result
    return {"value": elapsed / steps * 1000}


def w2(db: Path) -> dict:
    with nc.Engine(db) as eng:
        t = time.perf_counter()
        handles = [eng.start(bench_three_steps, k) for k in range(500)]
        results = [h.result(300) for h in handles]
        elapsed = time.perf_counter() - t
    assert results == [k + 3 for k in range(500)], results[:5]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"value": 1500 / elapsed, "peak_rss_mb": peak}


def w3(db: Path) -> dict:
    with nc.Engine(db) as eng:
        t = time.perf_counter()
        result = eng.start(bench_fan_out, 200).result(120)
        elapsed = time.perf_counter() - t
    assert result == sum(range(200)), result
    return {"value": elapsed}


def w4(db: Path) -> dict:
    samples = []
    with nc.Engine(db) as eng:
        for i in range(100):
            execution_id = f"w4-{i}"
            h = eng.start(bench_awaits_signal, id=execution_id)
            # Timed only from a committed start whose workflow waits for the signal.
            _wait(
                lambda h=h, execution_id=execution_id: (
                    eng.store.get_execution(execution_id) is not None and h.waiting_for == ["go"]
                ),
                "the workflow did not wait for its signal",
            )
            t = time.perf_counter()
            h.signal("go", f"v{i}")
            result = h.result(30)
            samples.append((time.perf_counter() - t) * 1000)
            assert result == f"v{i}", result
    return {"value": statistics.median(samples), "samples": samples}


W5_PAUSE = 1.0


def w5_prepare(db: Path, n: str) -> dict:
    eng = nc.Engine(db)
    eng.start(bench_resumable, int(n), W5_PAUSE, id="resume-me")
    _wait(
        lambda: any(
            e.kind.value == "TimerStarted"
            for e in eng.store.load_history("resume-me", max(0, 2 * int(n) - 2))
        ),
        "the workflow did not reach its sleep",
        timeout=600,
        step=0.01,
    )
    eng.stop()
    return {"fire_at": time.time() + W5_PAUSE}


def w5(db: Path, n: str) -> dict:
    with nc.Engine(db) as eng:
        result = eng.get("resume-me").result(120)
    steps = int(n)
    assert result == steps * (steps - 1) // 2 + steps, result
    return {"done_at": time.time()}


def commit_floor(db: Path) -> dict:
    return _commit_floor(db, samples=300, idle=0.0)


def commit_floor_after_idle(db: Path) -> dict:
    """The floor as W4 meets it: each commit follows 10 ms of idleness (W4 waits for the
    start to commit between samples), and an idle core runs a commit slower than one
    warm from the commit before (measured here: ~1.7 ms against ~1.2 ms)."""
    return _commit_floor(db, samples=100, idle=0.01)


def _commit_floor(db: Path, *, samples: int, idle: float) -> dict:
    from datetime import UTC, datetime

    from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
    from nbconductor.storage.records import Batch, EventKind, EventRecord

    store = DuckDBStore(db)
    took = []
    for i in range(samples):
        now = datetime.now(UTC)
        batch = Batch(
            events=[
                EventRecord(f"f{i}", 2, EventKind.SIGNAL_RECEIVED, now, None, "go", None, '{"payload":"v"}'),
                EventRecord(f"f{i}", 3, EventKind.EXECUTION_COMPLETED, now, data='{"result":"v"}'),
            ]
        )  # fmt: skip
        if idle:
            threading.Event().wait(idle)
        t = time.perf_counter()
        store.commit(batch)
        took.append((time.perf_counter() - t) * 1000)
    assert len(store.load_history(f"f{samples - 1}")) == 2
    store.close()
    return {"value": statistics.median(took)}


def rss_floor(db: Path) -> dict:
    """The RSS of a process that imported nbconductor and opened a history file, before
    any engine work: what the RSS targets must fit above (mostly DuckDB's library)."""
    from nbconductor.storage.duckdb.duckdb_store import DuckDBStore

    store = DuckDBStore(db)
    assert store.count_executions() == 0
    status = _status_kb()
    store.close()
    return {
        "value": status["VmRSS"] / 1024,
        "anon_mb": status["RssAnon"] / 1024,
        "file_mb": status["RssFile"] / 1024,
    }


def cold_start(db: Path) -> dict:
    with nc.Engine(db) as eng:
        assert eng.start(bench_sequential, 1).result(60) == 0
        done_at = time.time()
    return {"done_at": done_at}


def idle_cpu(db: Path) -> dict:
    with nc.Engine(db) as eng:
        assert eng.start(bench_sequential, 5).result(60) == 10
        before = time.process_time()
        threading.Event().wait(10)
        used = time.process_time() - before
    return {"value": used}


def rss_prepare(db: Path) -> dict:
    with nc.Engine(db) as eng:
        handles = [eng.start(bench_three_steps, 0) for _ in range(10_000)]
        for h in handles:
            assert h.result(600) == 3
    return {}


def rss_closed(db: Path) -> dict:
    with nc.Engine(db) as eng:
        assert eng.start(bench_sequential, 5).result(60) == 10
        rss_kb = _current_rss_kb()
        assert eng.store.count_executions() == 10_001
    return {"value": rss_kb / 1024}


def _current_rss_kb() -> int:
    return _status_kb().get("VmRSS", 0)


def _status_kb() -> dict[str, int]:
    """The resident memory from /proc: all of it, and its anonymous and file-backed
    (library code) parts, in KB."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                fields[key] = int(value.split()[0])
    return fields


ONE = {
    "W1": w1,
    "W1-busy": w1_busy,
    "W2": w2,
    "W3": w3,
    "W4": w4,
    "W5-prepare": w5_prepare,
    "W5": w5,
    "floor": commit_floor,
    "floor-idle": commit_floor_after_idle,
    "rss-floor": rss_floor,
    "cold": cold_start,
    "idle": idle_cpu,
    "rss-prepare": rss_prepare,
    "rss": rss_closed,
}

# ----------------------------------------------------------------- the driver


def _child(name: str, db: Path, *args: str) -> tuple[dict, float]:
    """Run one workload in a fresh interpreter; its answer and when it was launched."""
    launched = time.time()
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_engine", "--one", name, str(db), *args],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
        timeout=1800,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    if out.returncode != 0:
        raise RuntimeError(f"benchmark {name} {args} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1]), launched


def _sample(name: str, tmp: Path, run: int, size: str | None) -> dict:
    args = (size,) if size else ()
    db = tmp / f"{name}-{size}-{run}.duckdb"
    if name == "W5":
        prepared, _ = _child("W5-prepare", db, *args)
        # The resumed run must find its timer due, so that it is done without waiting.
        threading.Event().wait(max(0.0, prepared["fire_at"] - time.time()))
        answer, launched = _child("W5", db, *args)
        return {"value": answer["done_at"] - launched}
    if name == "cold":
        answer, launched = _child("cold", db)
        return {"value": answer["done_at"] - launched}
    if name == "rss":
        _child("rss-prepare", db)
    answer, _ = _child(name, db, *args)
    return answer


# name, sizes, label, unit, target
PLAN = [
    ("W1", ("100", "1000", "10000"), "W1 ms per sequential step", "ms", "<= 1.0 (n=1000)"),
    ("W1-busy", ("100",), "W1 beside a thread running Python", "ms", "(kept low)"),
    ("W2", (None,), "W2 tasks/s (500 wf x 3 tasks)", "/s", ">= 10000"),
    ("W3", (None,), "W3 s for gather of 200", "s", "<= 0.25"),
    ("W4", (None,), "W4 signal round trip median", "ms", "<= 1.5"),
    ("W5", ("100", "1000", "10000"), "W5 s process start to done", "s", "<= 0.9 (n=10000)"),
    ("floor", (None,), "floor: store commit of 2 events", "ms", "(back to back)"),
    ("floor-idle", (None,), "floor after 10 ms idle (W4 pays one)", "ms", "(W4's floor)"),
    ("cold", (None,), "cold start: launch to one step done", "s", "(kept)"),
    ("idle", (None,), "idle CPU s over 10 s", "s", "~ 0"),
    ("rss", (None,), "RSS MB, engine on 10,000 closed", "MB", "<= 80"),
    ("rss-floor", (None,), "RSS MB, import + open a file, no work", "MB", "(the floor)"),
]


def measure(runs: int, only: set[str] | None, quick: bool) -> list[dict]:
    for package in (Path(nc.__file__).parent, Path(__file__).parent):
        compileall.compile_dir(package, quiet=1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, sizes, label, unit, target in PLAN:
            if only and name not in only:
                continue
            for size in sizes:
                if quick and size == "10000":
                    continue
                load = os.getloadavg()
                samples = [_sample(name, Path(tmp), r, size) for r in range(runs)]
                values = [s["value"] for s in samples]
                row = {
                    "label": label + (f" n={size}" if size else ""),
                    "median": statistics.median(values),
                    "min": min(values),
                    "max": max(values),
                    "unit": unit,
                    "target": target,
                    "load": load[0],
                }
                if name == "W2":
                    row["extra"] = "peak RSS MB " + "/".join(
                        f"{s['peak_rss_mb']:.0f}" for s in samples
                    )
                if name == "rss-floor":
                    row["extra"] = "anonymous {:.0f} MB, file-backed {:.0f} MB".format(
                        statistics.median(s["anon_mb"] for s in samples),
                        statistics.median(s["file_mb"] for s in samples),
                    )
                if name == "W4":
                    every = sorted(x for s in samples for x in s["samples"])
                    p95 = every[int(len(every) * 0.95) - 1]
                    row["extra"] = f"all {len(every)} samples: p95 {p95:.2f} max {every[-1]:.2f}"
                rows.append(row)
                _print_row(row)
    return rows


def _print_row(row: dict) -> None:
    extra = f"  {row['extra']}" if row.get("extra") else ""
    print(
        f"{row['label']:40} {row['median']:10.3f} {row['unit']:3} "
        f"[{row['min']:.3f}-{row['max']:.3f}]  load {row['load']:.2f}  "
        f"target {row['target']}{extra}",
        flush=True,
    )


def run(skip: tuple[str, ...] = ()) -> list[tuple[str, float, str]]:
    """The rows for ``python -m benchmarks`` (one run each, no 10,000 sizes)."""
    only = {name for name, *_ in PLAN} - set(skip)
    rows = measure(1, only, quick=True)
    return [(r["label"], r["median"], r["target"]) for r in rows]


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:
        print(json.dumps(ONE[argv[1]](Path(argv[2]), *argv[3:])))
        return 0
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 3
    only = set(argv[argv.index("--only") + 1].split(",")) if "--only" in argv else None
    print(f"load average {os.getloadavg()}, {runs} runs each, median [min-max]", flush=True)
    measure(runs, only, quick="--quick" in argv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
