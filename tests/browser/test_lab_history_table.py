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
    table = page.locator(".nbc-history-view [data-testid=nbc-history]")
    rows = table.locator("[data-testid=nbc-history-row]")
    total = table.locator("[data-testid=nbc-history-total]")
    # The table is live: wait until all five have closed, two of them failed.
    expect(rows.and_(page.locator("[data-status=completed]"))).to_have_count(3, timeout=DEADLINE)
    expect(rows.and_(page.locator("[data-status=failed]"))).to_have_count(2, timeout=DEADLINE)
    expect(total).to_have_text("5")
    # Its saved snapshot, out of sight while the table is live, follows it.
    saved = page.locator(".nbc-saved-snapshot [data-testid=nbc-history-total]")
    expect(saved).to_be_hidden()
    expect(saved).to_have_text("5", timeout=DEADLINE)
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


NAPS = [
    '%%workflow bulk_nap() -> str\nawait nc.sleep("1 hour")\nreturn "woke up"',
    'naps = [bulk_nap.start(id=f"bulk-nap-{n}") for n in range(4)]',
    "%conductor list --workflow bulk_nap",
]


def test_a_row_opens_under_itself_and_ticked_rows_stop_together(lab, page):
    open_notebook(page, lab, write_notebook(lab, "bulk", NAPS))
    run_all(page)
    table = page.locator(".nbc-history-view [data-testid=nbc-history]")
    rows = table.locator("[data-testid=nbc-history-row]")
    expect(rows.and_(page.locator("[data-status=running]"))).to_have_count(4, timeout=DEADLINE)

    # A row's view opens in a row just under it, not below the pager.
    row = rows.and_(page.locator("[data-execution-id=bulk-nap-2]"))
    row.locator("td").nth(1).click()
    opened = page.locator('[data-testid=nbc-execution][data-execution-id="bulk-nap-2"]')
    expect(opened).to_be_visible(timeout=DEADLINE)
    below = row.locator("xpath=following-sibling::tr[1]")
    expect(below).to_have_attribute("data-testid", "nbc-detail-row")
    expect(
        below.locator('[data-testid=nbc-execution][data-execution-id="bulk-nap-2"]')
    ).to_be_visible()

    # Tick two rows: Cancel and Terminate apply to them, after a confirmation.
    for n in (0, 1):
        rows.and_(page.locator(f"[data-execution-id=bulk-nap-{n}]")).locator(
            "[data-testid=nbc-row-check]"
        ).click()
    bulk = table.locator("[data-testid=nbc-bulk]")
    expect(bulk).to_contain_text("2 executions ticked", timeout=DEADLINE)
    bulk.locator("[data-testid=nbc-bulk-terminate]").click()
    expect(bulk.locator("[data-testid=nbc-bulk-question]")).to_contain_text(
        "Terminate 2 executions?", timeout=DEADLINE
    )
    shoot(page, table, "history-table-bulk-confirm")
    bulk.locator("[data-testid=nbc-bulk-keep]").click()  # changed our mind: nothing ends
    expect(bulk.locator("[data-testid=nbc-bulk-terminate]")).to_be_visible(timeout=DEADLINE)
    expect(rows.and_(page.locator("[data-status=running]"))).to_have_count(4)
    bulk.locator("[data-testid=nbc-bulk-terminate]").click()
    bulk.locator("[data-testid=nbc-bulk-confirm]").click()
    expect(rows.and_(page.locator("[data-status=terminated]"))).to_have_count(2, timeout=DEADLINE)
    expect(bulk.locator("[data-testid=nbc-bulk-notice]")).to_have_text("terminated 2 of 2")
    expect(rows.and_(page.locator("[data-status=running]"))).to_have_count(2)
    # Closed rows have no box to tick; the open ones are still running.
    expect(table.locator("[data-status=terminated] [data-testid=nbc-row-check]")).to_have_count(0)
