"""The views in Notebook 7 (issue items 1 and 2 there): a saved notebook reopened
without the kernel that drew its views shows their last state, and after a kernel
restart the old view says it is disconnected."""

from __future__ import annotations

from labtools import DEADLINE, badge, execution_view, shoot, write_notebook
from playwright.sync_api import expect

from nbconductor.testing import wait_for

GREETING = [
    '%%workflow nb7_greeting(name: str) -> str\nawait nc.sleep("2s")\nreturn f"hello {name}"',
    'greeting = nb7_greeting.start("bea", id="nb7-greeting")',
    "greeting",
]

NAP = [
    '%%workflow nb7_nap() -> str\nawait nc.sleep("1 hour")\nreturn "woke up"',
    'napping = nb7_nap.start(id="nb7-nap")',
    "napping",
]

# The ping interval and the silence that counts as disconnected (panel.js), with room.
GONE_WITHIN = 40_000


def _open(page, server, relative: str) -> None:
    page.goto(server.notebook7_url(relative))
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    _wait_idle(server)


def _wait_idle(server) -> None:
    """Until the notebook's kernel is up and idle (Notebook 7 has no status bar text)."""

    def idle() -> bool:
        sessions = server.api("/api/sessions")
        return bool(sessions) and all(
            s["kernel"] and s["kernel"]["execution_state"] == "idle" for s in sessions
        )

    wait_for(idle, timeout=60, what="the kernel to be idle")


def _run_all(page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def test_a_saved_view_shows_its_last_state_in_notebook_7(notebook7, nb7_page):
    page = nb7_page
    relative = write_notebook(notebook7, "nb7-saved", GREETING)
    _open(page, notebook7, relative)
    _run_all(page)
    view = execution_view(page, "nb7-greeting")
    expect(badge(view)).to_have_text("Completed", timeout=DEADLINE)
    saved = page.locator(".nbc-saved-snapshot")
    expect(saved).to_be_hidden()
    expect(saved).to_contain_text("Completed", timeout=DEADLINE)
    page.keyboard.press("Control+s")
    page.wait_for_function("() => !document.title.startsWith('*')", timeout=DEADLINE)
    notebook7.shut_down_kernels()
    page.reload()
    page.wait_for_selector(".jp-Notebook", timeout=DEADLINE)
    expect(saved).to_be_visible(timeout=DEADLINE)
    expect(saved.locator("[data-testid=nbc-result]")).to_contain_text("hello bea")
    expect(page.get_by_text("Error displaying widget")).to_be_hidden()
    shoot(page, saved, "notebook7-execution-view-saved")


def test_after_a_restart_the_old_view_says_it_is_disconnected_in_notebook_7(notebook7, nb7_page):
    page = nb7_page
    _open(page, notebook7, write_notebook(notebook7, "nb7-restart", NAP))
    _run_all(page)
    view = execution_view(page, "nb7-nap")
    expect(badge(view)).to_have_text("Sleeping", timeout=DEADLINE)
    cancel = view.locator("button.nbc-cancel")
    expect(cancel).to_be_enabled()
    page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").click()
    page.locator(".lm-Menu-itemLabel", has_text="Restart Kernel…").first.click()
    page.locator(".jp-Dialog-button.jp-mod-accept").click()
    banner = view.locator("[data-testid=nbc-disconnected]")
    expect(banner).to_be_visible(timeout=GONE_WITHIN)
    expect(banner).to_contain_text("no kernel serves this view")
    expect(cancel).to_be_disabled()
    shoot(page, view, "notebook7-execution-view-disconnected")
