"""Views whose kernel is gone: after a kernel restart the old view says it is
disconnected, stops its clocks and disables its buttons (issue item 2)."""

from __future__ import annotations

from labtools import DEADLINE, badge, execution_view, open_notebook, run_all, shoot, write_notebook
from playwright.sync_api import expect

NAP = [
    '%%workflow long_nap() -> str\nawait nc.sleep("1 hour")\nreturn "woke up"',
    'napping = long_nap.start(id="nap-restart")',
    "napping",
]

# The ping interval and the silence that counts as disconnected (panel.js), with room.
GONE_WITHIN = 40_000


def test_after_a_restart_the_old_view_says_it_is_disconnected(lab, page):
    open_notebook(page, lab, write_notebook(lab, "restart", NAP))
    run_all(page)
    view = execution_view(page, "nap-restart")
    expect(badge(view)).to_have_text("Sleeping", timeout=DEADLINE)
    cancel = view.locator("button.nbc-cancel")
    expect(cancel).to_be_enabled()
    banner = view.locator("[data-testid=nbc-disconnected]")
    expect(banner).to_have_count(0)

    page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").click()
    page.locator(".lm-Menu-itemLabel", has_text="Restart Kernel…").first.click()
    page.locator(".jp-Dialog-button.jp-mod-accept").click()
    page.wait_for_selector(".jp-StatusBar-TextItem:has-text('| Idle')", timeout=60_000)

    expect(banner).to_be_visible(timeout=GONE_WITHIN)
    expect(banner).to_contain_text("no kernel serves this view")
    expect(cancel).to_be_disabled()
    expect(view.locator("button.nbc-terminate")).to_be_disabled()
    # Its clock stopped: the elapsed time no longer changes.
    elapsed = view.locator(".nbc-countdown").first.text_content()
    page.wait_for_timeout(2_500)  # two clock ticks: a live clock would have moved
    assert view.locator(".nbc-countdown").first.text_content() == elapsed
    shoot(page, view, "execution-view-disconnected")
