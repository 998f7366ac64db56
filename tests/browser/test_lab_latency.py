"""Benchmark (issue 7): time from a task finishing to the view in the browser showing it.

Twenty tasks run one after another, each polling for a gate file (every 5 ms) that the
test creates. Latency = the page's ``Date.now()`` when the view's DOM shows one more
completed step − the test's wall clock just before it created the gate (one machine,
one clock). The median and p95 go to ``test-artifacts/widget-latency.json`` and the
terminal summary; the 250 ms target is reported, not asserted (shared timing on CI).
"""

from __future__ import annotations

import json
import statistics
import time

import pytest
from labtools import (
    ARTIFACTS,
    DEADLINE,
    LATENCY_REPORT,
    badge,
    execution_view,
    open_notebook,
    run_all,
    write_notebook,
)
from playwright.sync_api import expect

TASKS = 20
TARGET_MS = 250

# Resolves window.__nbcSeen with the page's clock once `count` task steps show as
# completed; returns whether they already did (they must not: the gate is closed).
ARM = """({ id, count, limit }) => {
  const body = document
    .querySelector(`.nbc-live-view [data-execution-id="${id}"]`)
    .closest(".nbc-body");
  const done = () =>
    body.querySelectorAll("[data-testid=nbc-step][data-kind=task][data-state=completed]")
      .length >= count;
  const already = done();
  window.__nbcSeen = new Promise((resolve, reject) => {
    const observer = new MutationObserver(() => {
      if (done()) { observer.disconnect(); clearTimeout(timer); resolve(Date.now()); }
    });
    const timer = setTimeout(() => {
      observer.disconnect();
      reject(new Error(`step ${count} not shown as completed within ${limit} ms`));
    }, limit);
    observer.observe(body, { childList: true, subtree: true, attributes: true });
  });
  return already;
}"""


def _cells(gates: str) -> list[str]:
    return [
        "%%task gated(i: int, gates: str) -> int\n"
        "import os, time\n"
        "gate = os.path.join(gates, f'gate-{i}')\n"
        "while not os.path.exists(gate):\n"
        "    time.sleep(0.005)\n"
        "return i",
        "%%workflow gated_steps(n: int, gates: str) -> int\n"
        "total = 0\n"
        "for i in range(n):\n"
        "    total += await gated(i, gates)\n"
        "return total",
        f"h = gated_steps.start({TASKS}, {gates!r}, id='gated')",
        "h",
    ]


@pytest.mark.slow
def test_task_completion_reaches_the_view(lab, page, request):
    gates = lab.root / "gates"
    gates.mkdir()
    open_notebook(page, lab, write_notebook(lab, "latency", _cells(str(gates))))
    run_all(page)
    view = execution_view(page, "gated")
    tasks = view.locator("[data-testid=nbc-step][data-kind=task]")

    latencies = []
    for i in range(TASKS):
        # Task i is scheduled and shown (the gate is still closed).
        expect(tasks).to_have_count(i + 1, timeout=DEADLINE)
        assert not page.evaluate(ARM, {"id": "gated", "count": i + 1, "limit": DEADLINE})
        released = time.time() * 1000
        (gates / f"gate-{i}").touch()
        seen = page.evaluate("() => window.__nbcSeen")  # every update must arrive
        latencies.append(seen - released)
    expect(badge(view)).to_have_text("Completed", timeout=DEADLINE)

    report = {
        "benchmark": "task finishing -> execution view showing it (browser)",
        "samples": len(latencies),
        "median_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(statistics.quantiles(latencies, n=20, method="inclusive")[-1], 1),
        "max_ms": round(max(latencies), 1),
        "target_median_ms": TARGET_MS,
        "latencies_ms": [round(x, 1) for x in latencies],
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "widget-latency.json").write_text(json.dumps(report, indent=2) + "\n")
    request.config.stash[LATENCY_REPORT] = report
    print(
        f"widget latency: median {report['median_ms']} ms, p95 {report['p95_ms']} ms "
        f"(target median <= {TARGET_MS} ms)"
    )
