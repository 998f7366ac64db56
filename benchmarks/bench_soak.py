"""Soak: an engine starting 20 executions a second for minutes, and its RSS over time.

Each execution runs three no-op tasks and its result is checked. RSS is sampled every
10 s; the figure that matters is the growth after the warm-up (the first two minutes,
or the first half of a shorter run): the target is <= 5 MB, i.e. memory plateaus.

Run: ``python -m benchmarks.bench_soak [--minutes 10] [--rate 20]``; ``--minutes 2``
is the quick mode.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbconductor as nc


@nc.task
def soak_noop(i: int) -> int:
    return i


@nc.workflow
async def soak_three_steps(k: int) -> int:
    total = 0
    for i in range(3):
        total += await soak_noop(i)
    return total + k


def _rss_mb() -> float:
    return _status_mb().get("VmRSS", 0.0)


def _status_mb() -> dict[str, float]:
    """The process's resident memory from /proc: all of it, and its anonymous and
    file-backed parts (library code such as DuckDB's is file-backed)."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                fields[key] = int(value.split()[0]) / 1024
    return fields


def soak(db: Path, minutes: float, rate: float) -> list[tuple[float, int, float]]:
    """Run the soak; returns (seconds, executions done, RSS MB) samples."""
    samples: list[tuple[float, int, float]] = []
    pending: list[tuple[int, nc.Handle]] = []
    done = 0
    with nc.Engine(db) as eng:
        start = time.monotonic()
        end = start + minutes * 60
        next_sample = start
        k = 0
        while True:
            now = time.monotonic()
            if now >= next_sample:
                memory = _status_mb()
                samples.append((now - start, done, memory.get("VmRSS", 0.0)))
                print(
                    f"{now - start:7.0f} s {done:8d} done {samples[-1][2]:8.1f} MB "
                    f"(anonymous {memory.get('RssAnon', 0.0):.1f}, "
                    f"file {memory.get('RssFile', 0.0):.1f})",
                    flush=True,
                )
                next_sample += 10
            if now >= end:
                break
            pending.append((k, eng.start(soak_three_steps, k)))
            k += 1
            # Check results as they come, so handles and results do not pile up here.
            while pending and (len(pending) > 200 or pending[0][1].status.closed):
                expected, handle = pending.pop(0)
                assert handle.result(60) == expected + 3
                done += 1
            threading.Event().wait(max(0.0, start + k / rate - time.monotonic()))
        for expected, handle in pending:
            assert handle.result(60) == expected + 3
            done += 1
        samples.append((time.monotonic() - start, done, _rss_mb()))
    return samples


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=20.0, help="executions started per second")
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        samples = soak(Path(tmp) / "soak.duckdb", args.minutes, args.rate)
    warm = min(120.0, args.minutes * 30)  # two minutes, or half of a shorter run
    base = next(rss for at, _, rss in samples if at >= warm)
    final = samples[-1][2]
    print(
        f"executions {samples[-1][1]} in {samples[-1][0]:.0f} s; RSS {samples[0][2]:.1f} MB at "
        f"start, {base:.1f} MB at {warm:.0f} s, {final:.1f} MB at the end: growth after "
        f"warm-up {final - base:+.1f} MB (target <= 5); peak {max(s[2] for s in samples):.1f} "
        f"MB; load average {os.getloadavg()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
