"""A saved notebook shows each view's last state without the kernel that drew it
(issue item 1): reopened with a new kernel in Lab, and exported by nbconvert."""

from __future__ import annotations

import json

from labtools import DEADLINE, badge, execution_view, open_notebook, run_all, shoot, write_notebook
from nbconvert import HTMLExporter
from playwright.sync_api import expect

GREETING = [
    '%%workflow saved_greeting(name: str) -> str\nawait nc.sleep("2s")\nreturn f"hello {name}"',
    'greeting = saved_greeting.start("ann", id="saved-greeting")',
    # Displayed while it sleeps: the saved snapshot must follow it to the end.
    "greeting",
    # A view with no panel inside yet (no schedule card) is live all the same.
    "%conductor schedules",
]


def _snapshots_in_file(path) -> list[str]:
    nb = json.loads(path.read_text())
    return [
        "".join(output["data"]["text/html"])
        for cell in nb["cells"]
        for output in cell.get("outputs", [])
        if "nbc-saved-snapshot" in "".join(output.get("data", {}).get("text/html", ""))
    ]


def test_a_saved_view_shows_its_last_state_without_its_kernel(lab, page):
    relative = write_notebook(lab, "saved", GREETING)
    open_notebook(page, lab, relative)
    run_all(page)
    view = execution_view(page, "saved-greeting")
    expect(badge(view)).to_have_text("Completed", timeout=DEADLINE)
    saved = page.locator(".nbc-saved-snapshot").filter(
        has=page.locator("[data-testid=nbc-execution]")
    )
    # While the live view shows, its saved snapshot stays out of sight but follows it.
    expect(saved).to_have_count(1)
    expect(page.locator(".nbc-schedules-view")).to_be_visible()
    expect(page.locator(".nbc-saved-snapshot", has_text="no schedules")).to_be_hidden()
    expect(saved).to_be_hidden()
    expect(saved).to_contain_text("Completed", timeout=DEADLINE)
    page.keyboard.press("Control+s")
    expect(page.locator(".jp-mod-dirty")).to_have_count(0, timeout=DEADLINE)
    [stored] = [s for s in _snapshots_in_file(lab.root / relative) if "saved-greeting" in s]
    assert "Completed" in stored and "hello ann" in stored and "Saved view as of" in stored

    # The kernel that drew the view is gone; the page comes back with a new one.
    lab.shut_down_kernels()
    page.reload()
    page.wait_for_selector(".jp-Notebook", timeout=DEADLINE)
    page.wait_for_selector(".jp-StatusBar-TextItem:has-text('| Idle')", timeout=60_000)
    expect(saved).to_be_visible(timeout=DEADLINE)
    expect(saved).to_contain_text("Completed")
    expect(saved.locator("[data-testid=nbc-result]")).to_contain_text("hello ann")
    expect(saved).to_contain_text("Saved view as of")
    expect(page.locator("[data-testid=nbc-status-badge]", has_text="Running")).to_have_count(0)
    # The widget's output, with no model behind it any more, steps aside.
    expect(page.get_by_text("Error displaying widget")).to_be_hidden()
    shoot(page, saved, "execution-view-saved")

    # Re-running the cells draws a live view again, and its snapshot steps aside.
    run_all(page)
    view = execution_view(page, "saved-greeting")
    expect(badge(view)).to_have_text("Completed", timeout=DEADLINE)
    expect(saved).to_be_hidden()

    # nbconvert's HTML (no kernel, no widget state) holds the last state too.
    body, _ = HTMLExporter(template_name="lab").from_filename(str(lab.root / relative))
    assert "hello ann" in body and "Completed" in body
    assert ":not(:has(.nbc-live-view)){display:none}" in body
