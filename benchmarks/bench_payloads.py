"""Payload benchmarks W6 and W6r (issue #16): a DataFrame passed between two tasks.

- W6: ``make`` returns an N-row pandas frame (an int, a float and a string column);
  ``summarize`` sums one column. The workflow's total time (engine open to result,
  including the engine's start and stop) against calling the two functions directly,
  the history file's growth against the frame's zstd Parquet size, and the peak RSS of
  both runs. N = 10,000, 1,000,000 and 10,000,000 (``--quick`` skips 10M).
- W6r: the process is SIGKILLed once ``make``'s result is committed; a fresh process
  opens the file and resumes the execution, without running ``make`` again, until
  ``summarize`` is called with the frame: the time from opening the engine to that call.

Every run is a fresh process on a fresh file; the results are asserted (the sum is
checked, ``make`` must not run twice). Medians and spreads over ``RUNS`` runs (3 by
default), and the load average, are printed.

Run alone: ``python -m benchmarks.bench_payloads [--quick] [--runs N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbconductor as nc

ROWS = (10_000, 1_000_000, 10_000_000)
_CALLS = {"make": 0}
_INSIDE = [0.0]  # seconds spent inside make and summarize themselves
_BLOCK = threading.Event()


def build_frame(rows: int):
    import numpy as np
    import pandas as pd

    ids = np.arange(rows, dtype="int64")
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "id": ids,
            "amount": rng.random(rows),
            "label": np.char.add("item-", (ids % 10_000).astype(str)).astype(object),
        }
    )


def total(frame) -> float:
    return float(frame["id"].sum())


@nc.task(name="bench_w6_make")
def w6_make(rows: int):
    _CALLS["make"] += 1
    t = time.perf_counter()
    frame = build_frame(rows)
    _INSIDE[0] += time.perf_counter() - t
    return frame


@nc.task(name="bench_w6_summarize")
def w6_summarize(frame) -> float:
    reached = os.environ.get("BENCH_W6R_REACHED")
    if reached:  # W6r: say when the resumed execution got here, then stop
        Path(reached).write_text(repr(time.perf_counter()))
    if os.environ.get("BENCH_W6R_BLOCK"):
        _BLOCK.wait()  # W6r preparation: the process is killed while waiting
    t = time.perf_counter()
    result = total(frame)
    _INSIDE[0] += time.perf_counter() - t
    return result


@nc.workflow(name="bench_w6_pipeline")
async def w6_pipeline(rows: int) -> float:
    frame = await w6_make(rows)
    return await w6_summarize(frame)


def _expected(rows: int) -> float:
    return float(rows * (rows - 1) // 2)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the child processes -----------------------------------------------------------------


def _import_libraries() -> None:
    # Both runs import pandas and pyarrow before the clock starts: importing them is
    # not what is measured.
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401


def child_direct(rows: int, scratch: Path) -> dict:
    _import_libraries()
    t = time.perf_counter()
    result = total(build_frame(rows))
    elapsed = time.perf_counter() - t
    assert result == _expected(rows), result
    rss = _peak_rss_mb()
    parquet = scratch / "frame.parquet"
    build_frame(rows).to_parquet(parquet, compression="zstd")
    return {"seconds": elapsed, "rss_mb": rss, "parquet": parquet.stat().st_size}


def child_engine(rows: int, db: Path) -> dict:
    _import_libraries()
    # The file's size with an engine that ran nothing: what the run itself adds is
    # the growth.
    with nc.Engine(db):
        pass
    empty = db.stat().st_size
    t = time.perf_counter()
    with nc.Engine(db) as eng:
        result = eng.start(w6_pipeline, rows, id="w6").result(600)
    elapsed = time.perf_counter() - t
    assert result == _expected(rows), result
    assert _CALLS["make"] == 1, _CALLS
    return {
        "seconds": elapsed,
        "outside": elapsed - _INSIDE[0],  # the engine's own time, in the same run
        "rss_mb": _peak_rss_mb(),
        "growth": db.stat().st_size - empty,
    }


def child_prepare(rows: int, db: Path) -> dict:
    os.environ["BENCH_W6R_BLOCK"] = "1"
    eng = nc.Engine(db)
    eng.start(w6_pipeline, rows, id="w6r")
    deadline = time.monotonic() + 600
    while not any(e.kind.value == "TaskCompleted" for e in eng.history("w6r")):
        if time.monotonic() > deadline:
            raise RuntimeError("W6r: make never completed")
        threading.Event().wait(0.01)
    print(json.dumps({"ready": True}), flush=True)
    threading.Event().wait()  # killed by the parent
    return {}


def child_resume(rows: int, db: Path) -> dict:
    _import_libraries()
    reached = db.with_suffix(".reached")
    os.environ["BENCH_W6R_REACHED"] = str(reached)
    t = time.perf_counter()
    eng = nc.Engine(db)
    result = eng.get("w6r").result(600)
    eng.stop()
    assert result == _expected(rows), result
    assert _CALLS["make"] == 0, "make ran again after the restart"
    return {"seconds": float(reached.read_text()) - t}


_CHILDREN = {
    "direct": child_direct,
    "engine": child_engine,
    "prepare": child_prepare,
    "resume": child_resume,
}


# --- the parent ----------------------------------------------------------------------------


def _child(mode: str, rows: int, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_payloads", "--child", mode, str(rows), str(path)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"W6 {mode} child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _killed_after_make(rows: int, db: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_payloads",
            "--child",
            "prepare",
            str(rows),
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        if "ready" not in line:
            raise RuntimeError("W6r: the preparing child did not reach make's result")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
        proc.stdout.close()


def _spread(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}"


def measure(rows_list: tuple[int, ...], runs: int) -> list[tuple]:
    table: list[tuple] = []
    for rows in rows_list:
        direct, engine = [], []
        for _ in range(runs if rows < 10_000_000 else max(1, runs - 1)):
            with tempfile.TemporaryDirectory(prefix="nbc-w6-") as tmp:
                direct.append(_child("direct", rows, Path(tmp)))
                engine.append(_child("engine", rows, Path(tmp) / "w6.duckdb"))
        d = statistics.median(r["seconds"] for r in direct)
        e = statistics.median(r["seconds"] for r in engine)
        over = [r["seconds"] - s["seconds"] for r, s in zip(engine, direct, strict=True)]
        parquet = statistics.median(r["parquet"] for r in direct)
        growth = statistics.median(r["growth"] for r in engine)
        label = f"W6 {rows:,} rows"
        table += [
            (f"{label}: direct s", d, _spread([r["seconds"] for r in direct])),
            (f"{label}: engine s", e, _spread([r["seconds"] for r in engine])),
            (f"{label}: overhead s", statistics.median(over), _spread(over) + " (<=0.3 at 1M)"),
            (
                f"{label}: engine time outside the tasks s",
                statistics.median(r["outside"] for r in engine),
                _spread([r["outside"] for r in engine]) + " (same run, less noisy)",
            ),
            (f"{label}: engine/direct", e / d, "<=1.3 at 10M"),
            (f"{label}: growth/parquet", growth / parquet, f"<=1.2 ({growth / 1e6:.1f} MB)"),
            (
                f"{label}: peak RSS MB engine",
                statistics.median(r["rss_mb"] for r in engine),
                f"direct {statistics.median(r['rss_mb'] for r in direct):.0f} MB",
            ),
        ]
    resumed = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="nbc-w6r-") as tmp:
            db = Path(tmp) / "w6r.duckdb"
            _killed_after_make(1_000_000, db)
            resumed.append(_child("resume", 1_000_000, db)["seconds"])
    table.append(
        (
            "W6r s to reach summarize (1M rows)",
            statistics.median(resumed),
            _spread(resumed) + " (<=0.5)",
        )
    )
    return table


def run(quick: bool = True, runs: int = 3) -> list[tuple]:
    """Rows for ``python -m benchmarks`` (10M rows only when not ``quick``)."""
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return measure(ROWS[:2] if quick else ROWS, runs)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_payloads")
    parser.add_argument("--quick", action="store_true", help="skip 10,000,000 rows")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, action="append", help="only these row counts")
    parser.add_argument(
        "--child", nargs=3, metavar=("MODE", "ROWS", "PATH"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        mode, rows, path = args.child
        print(json.dumps(_CHILDREN[mode](int(rows), Path(path))), flush=True)
        return 0
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = tuple(args.rows) if args.rows else (ROWS[:2] if args.quick else ROWS)
    for label, value, target in measure(rows, args.runs):
        print(f"{label:44} {value:12.3f}   {target}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
