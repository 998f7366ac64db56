"""The history table in JupyterLab: filter by status."""

from __future__ import annotations

from labtools import DEADLINE, open_notebook, run_all, shoot, write_notebook
from playwright.sync_api import expect

CHECKS = [
    "%%task check(n: int) -> int\n"
    "if n % 2:\n"
    '    raise nc.ApplicationError(f"{n} is odd", non_retryable=True)\n'
    "return n",
    "%%workflow checked(n: int) -> int\nreturn await check(n)",
    'runs = [checked.start(n, id=f"checked-{n}") for n in range(5)]',
    "%conductor list",
]


def test_filter_the_history_by_status(lab, page):
    open_notebook(page, lab, write_notebook(lab, "history", CHECKS))
    run_all(page)
    table = page.locator("[data-testid=nbc-history]")
    rows = table.locator("[data-testid=nbc-history-row]")
    total = table.locator("[data-testid=nbc-history-total]")
    # The table is live: wait until all five have closed, two of them failed.
    expect(rows.and_(page.locator("[data-status=completed]"))).to_have_count(3, timeout=DEADLINE)
    expect(rows.and_(page.locator("[data-status=failed]"))).to_have_count(2, timeout=DEADLINE)
    expect(total).to_have_text("5")
    # Each failed row says why, and the start is relative ("3 s ago", "1 min ago").
    failed_errors = table.locator("[data-status=failed] [data-testid=nbc-row-error]")
    expect(failed_errors.first).to_contain_text("TaskFailed: task 'check' failed")
    expect(table.locator("time.nbc-ago").first).to_contain_text(" ago")
    shoot(page, table, "history-table")

    page.locator("[data-testid=nbc-filter-status-failed]").check()
    expect(total).to_have_text("2", timeout=DEADLINE)
    expect(rows).to_have_count(2)
    for row in rows.all():
        expect(row).to_have_attribute("data-status", "failed")
    shown = rows.evaluate_all("rows => rows.map((row) => row.dataset.executionId)")
    assert sorted(shown) == ["checked-1", "checked-3"]
    expect(page.locator("[data-testid=nbc-filter-status-failed]")).to_be_checked()
