"""The crash-torture harness: run the workload in a child process, SIGKILL it at random
moments (during start-up and recovery too), restart it each time, let it finish, then
check the history against invariants computed independently of the engine.

Used by tests/torture/test_torture.py (CI, at least 50 kills) and by
``python -m benchmarks.torture --kills 500``.
"""

from __future__ import annotations

import bisect
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torture_workload as workload  # noqa: E402

from nbconductor.engine.command import ENDING_EVENTS  # noqa: E402
from nbconductor.storage.codec import decode  # noqa: E402
from nbconductor.storage.duckdb.duckdb_store import DuckDBStore  # noqa: E402
from nbconductor.storage.records import EventKind, ExecutionFilter, Status  # noqa: E402


@dataclass
class Report:
    """What a torture run did and what it found."""

    kills: int = 0
    killed_before_open: int = 0
    lives: int = 0
    seconds: float = 0.0
    executions: int = 0
    events: int = 0
    task_starts: int = 0
    schedule_fires: int = 0
    violations: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.kills} kills ({self.killed_before_open} before the engine opened), "
            f"{self.lives} lives in {self.seconds:.1f}s; {self.executions} executions, "
            f"{self.events} events, {self.task_starts} task starts, "
            f"{self.schedule_fires} schedule fires; {len(self.violations)} violations"
        )


def _life(db: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(HERE / "torture_workload.py"), str(db), str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(workdir: Path, kills: int, seed: int = 0, max_delay: float = 1.5) -> Report:
    """Kill ``kills`` lives of the workload at random moments, then finish and check."""
    rng = random.Random(seed)
    db, log = workdir / "torture.duckdb", workdir / "effects.log"
    report = Report()
    began = time.monotonic()
    while report.kills < kills:
        proc = _life(db, log)
        report.lives += 1
        head = ""
        if rng.random() < 0.3:  # during start-up: imports, opening, recovery
            delay = rng.uniform(0.0, max_delay)
        else:  # while it works: once the engine has opened (and recovered)
            head = proc.stdout.readline()
            delay = rng.uniform(0.0, max_delay / 2)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            report.kills += 1
        out, err = proc.communicate(timeout=60)
        out = head + out
        if "opened" not in out:
            report.killed_before_open += proc.returncode == -signal.SIGKILL
        if proc.returncode not in (0, -signal.SIGKILL):
            report.violations.append(f"life {report.lives} exited {proc.returncode}: {err[-2000:]}")
            break
    proc = _life(db, log)
    report.lives += 1
    out, err = proc.communicate(timeout=300)
    if "done" not in out:
        report.violations.append(f"the last life did not finish ({proc.returncode}): {err[-2000:]}")
    report.seconds = time.monotonic() - began
    check(db, log, report)
    return report


def check(db: Path, log: Path, report: Report) -> None:
    """The invariants, from the history file and the side-effect log alone."""
    bad = report.violations
    store = DuckDBStore(db, read_only=True)
    try:
        records = {r.id: r for r in store.list_executions(ExecutionFilter(limit=None))}
        histories = store.histories(list(records))
    finally:
        store.close()
    report.executions = len(records)
    report.events = sum(len(h) for h in histories.values())

    # Gapless sequences, one ending event and it is last: nothing completed twice.
    for execution_id, history in histories.items():
        seqs = [e.seq for e in history]
        if seqs != list(range(1, len(seqs) + 1)):
            bad.append(f"{execution_id}: history sequence has gaps or repeats: {seqs}")
        endings = [e for e in history if e.kind in ENDING_EVENTS]
        record = records[execution_id]
        if record.status.closed:
            if len(endings) != 1 or history[-1] is not endings[0]:
                kinds = [e.kind.value for e in endings]
                bad.append(f"{execution_id}: {len(endings)} ending events {kinds}, not one last")
        elif endings:
            bad.append(f"{execution_id}: open but its history has an ending event")

    # Right terminal state and result for every execution.
    n = workload.indices(str(log))
    for execution_id, expected in workload.expected(n).items():
        record = records.get(execution_id)
        if record is None:
            bad.append(f"{execution_id}: missing")
        elif record.status is not Status.COMPLETED:
            bad.append(f"{execution_id}: {record.status.value}, not completed ({record.error})")
        elif decode(record.result) != expected:
            bad.append(f"{execution_id}: result {decode(record.result)!r}, not {expected!r}")
    for first, expected in workload.renewed(n).items():
        runs, current = [first], records.get(first)
        while current is not None and current.status is Status.CONTINUED_AS_NEW:
            nxt = [r for r in records.values() if r.origin_id == current.id]
            if len(nxt) != 1:
                bad.append(f"{current.id}: continued as new into {len(nxt)} runs, not one")
                break
            current = nxt[0]
            runs.append(current.id)
        if current is None or current.status is not Status.COMPLETED:
            bad.append(f"{first}: the chain {runs} did not complete")
        elif decode(current.result) != expected or len(runs) != expected + 1:
            bad.append(f"{first}: chain {runs} ended with {decode(current.result)!r}")

    # No committed task outcome ran again: no attempt of a task started in a life (a
    # process) after the one that committed its TaskCompleted event. Tasks are
    # at-least-once only until then; within one life the engine never repeats one.
    with open(log) as f:
        lines = [line.split() for line in f if line.strip()]
    life_starts = [float(words[2]) for words in lines if words[0] == "life"]
    starts: dict[str, list[int]] = defaultdict(list)  # tag -> the lives it started in
    life = 0
    for words in lines:
        if words[0] == "life":
            life += 1
        elif words[0] == "start":
            starts[words[1]].append(life)
    report.task_starts = sum(len(v) for v in starts.values())
    for tag, times in starts.items():
        quoted = json.dumps(tag)
        found = None
        for execution_id, history in histories.items():
            scheduled = [
                e.command
                for e in history
                if e.kind is EventKind.TASK_SCHEDULED and quoted in e.data
            ]
            if scheduled:
                completed = [
                    e
                    for e in history
                    if e.kind is EventKind.TASK_COMPLETED and e.command == scheduled[0]
                ]
                found = (execution_id, completed)
                break
        if found is None:
            bad.append(f"task {tag} ran but no execution scheduled it")
            continue
        execution_id, completed = found
        if len(completed) != 1:
            bad.append(f"task {tag} of {execution_id}: {len(completed)} TaskCompleted events")
            continue
        committed_in = bisect.bisect_right(life_starts, completed[0].at.timestamp())
        if any(life > committed_in for life in times):
            bad.append(f"task {tag} of {execution_id} ran again after its outcome committed")

    # Every acknowledged signal delivered exactly once (and nothing delivered twice).
    acked = [words[1] for words in lines if words[0] == "ack"]
    if len(acked) != len(set(acked)):
        bad.append("a signal was acknowledged twice")
    delivered = Counter()
    for i in n:
        for e in histories.get(f"sig-{i}", []):
            if e.kind is EventKind.SIGNAL_RECEIVED:
                delivered[decode(json.dumps(json.loads(e.data)["payload"]))] += 1
    for value in acked:
        if delivered[value] != 1:
            bad.append(f"acknowledged signal {value} delivered {delivered[value]} times")
    for value, n in delivered.items():
        if n > 1:
            bad.append(f"signal {value} delivered {n} times")

    # Schedule fires: unique, and with catch-up "all" none lost between the first and
    # the last one.
    nominal = sorted(
        datetime.fromisoformat(r.id.split("@", 1)[1])
        for r in records.values()
        if r.id.startswith(workload.SCHEDULE + "@")
    )
    report.schedule_fires = len(nominal)
    if len(nominal) != len(set(nominal)):
        bad.append("a schedule fire ran twice")
    if nominal:
        want = int((nominal[-1] - nominal[0]) / timedelta(seconds=1)) + 1
        if len(set(nominal)) != want:
            bad.append(f"schedule fires lost: {len(set(nominal))} of {want} seconds")
    else:
        bad.append("the schedule never fired")


def main(argv: list[str] | None = None) -> int:
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=500)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nbconductor-torture-") as tmp:
        report = run(Path(tmp), args.kills, args.seed)
    print(f"seed {args.seed}: {report.summary()}")
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for violation in report.violations:
        print("VIOLATION:", violation)
    return 1 if report.violations else 0
