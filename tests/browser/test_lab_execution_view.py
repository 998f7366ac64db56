"""An execution's live view in JupyterLab: send a signal, cancel, terminate."""

from __future__ import annotations

import re

from labtools import (
    DEADLINE,
    badge,
    execution_view,
    open_notebook,
    run_all,
    shoot,
    write_notebook,
)
from playwright.sync_api import expect

APPROVAL = [
    "%%task prepare(amount: float) -> float\nreturn amount * 2",
    "%%workflow approval(amount: float) -> str --signals approve\n"
    "prepared = await prepare(amount)\n"
    'decision = await nc.signal("approve")\n'
    "return f\"approved by {decision['by']}: {prepared}\"",
    'h = approval.start(21.0, id="approval-1")',
    "h",
]

SNOOZE = [
    '%%workflow snooze() -> str\nawait nc.sleep("1 hour")\nreturn "woke up"',
    'to_cancel = snooze.start(id="snooze-cancel")\nto_end = snooze.start(id="snooze-terminate")',
    "to_cancel",
    "to_end",
]


def test_approve_from_the_view(lab, page):
    open_notebook(page, lab, write_notebook(lab, "approval", APPROVAL))
    run_all(page)
    view = execution_view(page, "approval-1")
    status = badge(view)
    expect(status).to_have_text("Waiting for signal", timeout=DEADLINE)
    button = view.locator("button.nbc-signal")
    expect(button).to_have_text("approve")
    payload = view.locator(".nbc-signal-payload input")

    # An empty field decides nothing (None could mean "no"): nothing is sent.
    button.click()
    expect(view.locator(".nbc-signal-error")).to_contain_text("nothing was sent", timeout=DEADLINE)
    # Invalid JSON is refused in the view: nothing is sent, the execution still waits.
    payload.fill('{"by": ann}')
    button.click()
    expect(view.locator(".nbc-signal-error")).to_contain_text("not valid JSON", timeout=DEADLINE)
    expect(status).to_have_text("Waiting for signal")
    expect(view.locator("[data-testid=nbc-execution]")).to_have_attribute("data-status", "waiting")
    signals = view.locator("[data-testid=nbc-step][data-kind=signal]")
    expect(signals).to_have_count(0)

    payload.fill('{"by": "ann"}')
    button.click()
    expect(status).to_have_text("Completed", timeout=DEADLINE)
    expect(view.locator("[data-testid=nbc-result]")).to_contain_text("approved by ann: 42.0")
    expect(view.locator("[data-testid=nbc-error]")).to_have_count(0)
    expect(signals).to_have_count(1)
    # A completed execution cannot be stopped: no Cancel, no red Terminate.
    expect(view.locator("button.nbc-terminate")).to_be_hidden()
    expect(view.locator("button.nbc-cancel")).to_be_hidden()
    shoot(page, view, "execution-view-completed")


def test_cancel_and_terminate_from_the_view(lab, page):
    open_notebook(page, lab, write_notebook(lab, "snooze", SNOOZE))
    run_all(page)
    to_cancel = execution_view(page, "snooze-cancel")
    to_end = execution_view(page, "snooze-terminate")
    expect(badge(to_cancel)).to_have_text("Sleeping", timeout=DEADLINE)
    expect(badge(to_end)).to_have_text("Sleeping", timeout=DEADLINE)

    to_cancel.locator("button.nbc-cancel").click()
    expect(badge(to_cancel)).to_have_text("Cancelled", timeout=DEADLINE)
    expect(to_cancel.locator("button.nbc-cancel")).to_be_hidden()

    # Terminate asks first; only the confirmation ends the execution.
    to_end.locator("button.nbc-terminate").click()
    confirm = to_end.locator("button.nbc-terminate-confirm")
    expect(confirm).to_be_visible(timeout=DEADLINE)
    expect(badge(to_end)).to_have_text("Sleeping")
    confirm.click()
    expect(badge(to_end)).to_have_text("Terminated", timeout=DEADLINE)
    expect(confirm).to_be_hidden()
    expect(badge(to_cancel)).to_have_text("Cancelled")


RELOAD = [
    '%%workflow nap() -> str\nawait nc.sleep("1 hour")\nreturn "woke up"',
    'napping = nap.start(id="nap-reload")',
    "napping",
]


def test_view_reattaches_after_a_page_reload(lab, page):
    open_notebook(page, lab, write_notebook(lab, "reload", RELOAD))
    run_all(page)
    view = execution_view(page, "nap-reload")
    expect(badge(view)).to_have_text("Sleeping", timeout=DEADLINE)
    page.keyboard.press("Control+s")  # the saved output refers to the live widget model
    expect(page.locator(".jp-mod-dirty")).to_have_count(0, timeout=DEADLINE)
    page.reload()
    page.wait_for_selector(".jp-Notebook", timeout=DEADLINE)
    view = execution_view(page, "nap-reload")
    expect(badge(view)).to_have_text("Sleeping", timeout=DEADLINE)
    # The kernel still serves it: the live view shows, its saved snapshot steps aside.
    expect(page.locator(".nbc-saved-snapshot")).to_be_hidden()
    # Still live, not a static snapshot: its buttons reach the kernel's engine.
    view.locator("button.nbc-cancel").click()
    expect(badge(view)).to_have_text("Cancelled", timeout=DEADLINE)


FORM = [
    "%%workflow form_offer() -> str --signals "
    """'approve={"ok": true, "by": ""},withdraw=none'\n"""
    'decision = await nc.signal("approve")\n'
    'gone = await nc.signal("withdraw")\n'
    "return f\"{decision['by']} said {decision['ok']}, then {gone}\"",
    'offer = form_offer.start(id="form-1")',
    "offer",
]


def test_a_declared_payload_gets_a_form(lab, page):
    open_notebook(page, lab, write_notebook(lab, "form", FORM))
    run_all(page)
    view = execution_view(page, "form-1")
    status = badge(view)
    expect(status).to_have_text("Waiting for signal", timeout=DEADLINE)
    approve = view.locator(".nbc-signal-row").filter(has=page.locator("button", has_text="approve"))
    by = approve.locator(".nbc-signal-field-by input")
    expect(by).to_be_visible()
    expect(approve.locator(".nbc-signal-field-ok input[type=checkbox]")).to_be_checked()
    expect(approve.locator(".nbc-signal-payload")).to_have_count(0)  # no JSON box

    # An empty field sends nothing and says what is expected.
    approve.locator("button.nbc-signal").click()
    expect(approve.locator(".nbc-signal-error")).to_contain_text(
        "by: expects text, the field is empty; nothing was sent", timeout=DEADLINE
    )
    shoot(page, view, "execution-view-signal-form")
    by.fill("ann")
    approve.locator(".nbc-signal-field-ok input").uncheck()
    approve.locator("button.nbc-signal").click()
    # The signal that carries nothing is a bare button, and it sends None.
    withdraw = view.locator(".nbc-signal-row").filter(
        has=page.locator("button", has_text="withdraw")
    )
    expect(withdraw.locator("input")).to_have_count(0, timeout=DEADLINE)
    expect(withdraw.locator("button.nbc-signal")).to_have_class(re.compile("mod-primary"))
    withdraw.locator("button.nbc-signal").click()
    expect(status).to_have_text("Completed", timeout=DEADLINE)
    expect(view.locator("[data-testid=nbc-result]")).to_contain_text("ann said False, then None")


FAMILY = [
    "%%workflow family_child(n: int) -> int\nreturn n * 10",
    "%%workflow family_parent(n: int) -> int\n"
    "first = await nc.child(family_child, n)\n"
    'await nc.sleep("1s")\n'
    "return first + 1",
    'family = family_parent.start(4, id="family-1")',
    "family",
]


def test_input_children_time_axis_and_rerun_from_the_view(lab, page):
    open_notebook(page, lab, write_notebook(lab, "family", FAMILY))
    run_all(page)
    view = execution_view(page, "family-1")
    expect(badge(view)).to_have_text("Completed", timeout=DEADLINE)
    picture = view.locator('[data-testid=nbc-execution][data-execution-id="family-1"]')
    expect(picture.locator("[data-testid=nbc-input]")).to_contain_text("(4)")
    expect(picture.locator("[data-testid=nbc-result]")).to_contain_text("41")
    expect(picture.locator("[data-testid=nbc-axis]")).to_contain_text("since the start")
    # The child by its id, linked: a click opens its view below.
    child = picture.locator(
        "[data-testid=nbc-step][data-kind=child] [data-testid=nbc-execution-link]"
    )
    child_id = child.text_content()
    assert child_id
    child.click()
    expect(
        view.locator(f'[data-testid=nbc-execution][data-execution-id="{child_id}"]')
    ).to_contain_text("Completed", timeout=DEADLINE)
    # Closed: no Cancel or Terminate, but "Re-run from here" forks it and opens the fork.
    expect(view.locator("button.nbc-cancel").first).to_be_hidden()
    shoot(page, view, "execution-view-children")
    view.locator("button.nbc-fork").first.click()
    fork = view.locator("[data-testid=nbc-execution]").filter(has_text="from family-1")
    expect(fork).to_have_count(1, timeout=DEADLINE)
    expect(fork.locator("[data-testid=nbc-status-badge]").first).to_have_text(
        "Completed", timeout=DEADLINE
    )
