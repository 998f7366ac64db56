"""The crash-torture suite: at least 50 SIGKILLs across a mixed workload (tasks,
fan-out, timers, signals, children, continue-as-new, retries, a schedule every
second), then invariants checked against the history and a side-effect log."""

from __future__ import annotations

import time

import pytest
from torture_harness import Report, check, run


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_fifty_kills_lose_nothing_and_repeat_nothing(tmp_path):
    report = run(tmp_path, kills=50, seed=50)
    print(report.summary())
    assert report.kills >= 50
    assert report.task_starts > 0 and report.schedule_fires > 0
    assert report.violations == []

    # The checks can fail: a task run again in a later life, a signal acknowledged
    # twice, an execution's result that is not the expected one.
    log = tmp_path / "effects.log"
    with open(log, "a") as f:
        f.write(f"life 0 {time.time() + 1}\n")
        f.write(f"start chain-0/0 {time.time() + 2}\n")
        f.write("ack sig-0:0\n")
    tampered = Report()
    check(tmp_path / "torture.duckdb", log, tampered)
    assert any("chain-0/0" in v and "ran again" in v for v in tampered.violations)
    assert any("acknowledged twice" in v for v in tampered.violations)
