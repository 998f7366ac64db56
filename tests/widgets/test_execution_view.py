"""The execution view against a real engine: badges, buttons, coalescing, snapshots."""

from __future__ import annotations

import configparser
import re
import threading
from pathlib import Path

import pytest

import nbconductor as nc
from nbconductor import widgets
from nbconductor.errors import ExecutionNotFound
from nbconductor.storage.records import EventKind, Status
from nbconductor.testing import wait_for
from nbconductor.widgets.execution_view import ExecutionView

RELEASE = threading.Event()
SANITIZE = Path(__file__).parents[2] / "notebook-sources" / "sanitize.cfg"


@pytest.fixture(autouse=True)
def _release():
    RELEASE.clear()
    yield
    RELEASE.set()


@nc.task
def wv_double(i: int) -> int:
    return i * 2


@nc.task
def wv_blocked(i: int) -> int:
    nc.heartbeat(details="half way", progress=0.3)
    RELEASE.wait(10)
    return i


@nc.task(retry=nc.Retry(initial="1h"))
def wv_flaky() -> None:
    raise ValueError("not yet")


@nc.workflow(signals=["approve", "reject"])
async def wv_approval(n: int) -> str:
    total = 0
    for i in range(n):
        total += await wv_double(i)
    decision = await nc.signal("approve")
    return f"approved by {decision['by'] if decision else 'nobody'} after {total}"


@nc.workflow
async def wv_offer() -> str:
    await wv_double(1)
    decision = await nc.signal("approve", timeout="2d")
    await nc.sleep("1h")
    return f"decided {decision}"


@nc.workflow
async def wv_reports_progress() -> None:
    nc.progress(0.25, "a quarter done")
    await nc.signal("go")


@nc.workflow
async def wv_undeclared() -> str:
    return await nc.signal("go")


@nc.workflow
async def wv_slow() -> int:
    return await wv_blocked(7)


@nc.workflow
async def wv_sleeper() -> str:
    await nc.sleep("1h")
    return "rested"


FLAKY_CALLS: list[int] = []


@nc.task(retry=nc.Retry(initial="10ms", max_attempts=3))
def wv_drops_twice() -> str:
    FLAKY_CALLS.append(1)
    if len(FLAKY_CALLS) < 3:
        raise ConnectionError(f"attempt {len(FLAKY_CALLS)} dropped")
    return "through"


@nc.workflow
async def wv_persistent() -> str:
    return await wv_drops_twice()


@nc.workflow
async def wv_retrier() -> None:
    await wv_flaky()


@nc.workflow
async def wv_failing() -> None:
    raise RuntimeError("boom")


@nc.workflow
async def wv_parent() -> int:
    return await nc.child(wv_slow)


def view_of(engine, handle, coalescer) -> ExecutionView:
    return ExecutionView(engine, handle.id, coalescer=coalescer)


def label(view: ExecutionView) -> str:
    return view.snapshot.badge.label if view.snapshot else ""


# ------------------------------------------------------------------ status and signals


def test_badge_follows_a_signal_wait_to_completion(engine, coalescer):
    h = engine.start(wv_approval, 3)
    view = view_of(engine, h, coalescer)
    seen = [view.snapshot.badge.tone]
    view.panel.observe(
        lambda c: seen.append(re.search(r'data-status="(\w+)"', c["new"])[1]), names="html"
    )
    wait_for(lambda: label(view) == "Waiting for signal", what="the signal wait")
    assert view.snapshot.badge.detail == "approve"
    assert [row for row in view._rows] == ["approve", "reject"]  # the declared ones
    assert view._rows["approve"].button.button_style == "primary"
    assert view._rows["reject"].button.button_style == ""
    assert 'data-tone="waiting"' in view.panel.html

    view._rows["approve"].payload.value = '{"by": "ann"}'
    view._rows["approve"].button.click()  # what the front end's click message does
    wait_for(lambda: label(view) == "Completed", what="completion")
    assert h.result(timeout=5) == "approved by ann after 6"
    assert seen[-1] == "completed" and "waiting" in seen  # the tones the picture showed
    snapshot = view.snapshot
    assert snapshot.fraction == 1.0 and (snapshot.tasks_done, snapshot.tasks_total) == (3, 3)
    assert snapshot.result == "'approved by ann after 6'"
    assert 'data-testid="nbc-result"' in view.panel.html
    kinds = [s.kind for s in snapshot.steps]
    assert kinds == ["task", "task", "task", "signal"]


def test_explicit_progress_wins_over_task_counts(engine, coalescer):
    h = engine.start(wv_reports_progress)
    view = view_of(engine, h, coalescer)
    wait_for(lambda: label(view) == "Waiting for signal", what="the signal wait")
    assert view.snapshot.fraction == 0.25 and view.snapshot.explicit_progress
    assert 'data-fraction="0.250"' in view.panel.html
    assert "25%" in view.panel.html and "a quarter done" in view.panel.html
    h.terminate()


def test_a_signal_awaited_but_not_declared_gets_a_button(engine, coalescer):
    h = engine.start(wv_undeclared)
    view = view_of(engine, h, coalescer)
    wait_for(lambda: list(view._rows) == ["go"], what="the button of the awaited signal")
    view._rows["go"].payload.value = '"now"'
    view._rows["go"].button.click()
    assert h.result(timeout=5) == "now"


def test_buttons_disable_and_the_view_stops_following_once_closed(engine, coalescer):
    h = engine.start(wv_approval, 0)
    view = view_of(engine, h, coalescer)
    wait_for(lambda: label(view) == "Waiting for signal", what="the signal wait")
    assert view.following and not view.cancel_button.disabled
    assert view._on_engine_change in engine.subscribers
    engine.signal(h.id, "approve", None)
    wait_for(lambda: label(view) == "Completed", what="completion")
    assert not view.following
    assert view._on_engine_change not in engine.subscribers
    assert not coalescer.pending(view)
    for button in (view.cancel_button, view.terminate_button, view.confirm_button):
        assert button.disabled
    assert view.stop_buttons.layout.display == "none"  # no red Terminate once completed
    assert view.signal_rows.children == ()  # a closed execution takes no signals


def test_an_invalid_payload_shows_an_error_and_sends_nothing(engine, coalescer):
    h = engine.start(wv_approval, 0)
    view = view_of(engine, h, coalescer)
    wait_for(
        lambda: "approve" in view._rows and h.waiting_for == ["approve"],
        what="the signal button and the wait",
    )
    row = view._rows["approve"]
    row.payload.value = "{by: ann}"
    row.button.click()
    assert "not valid JSON" in row.error.value and "nothing was sent" in row.error.value
    assert not any(e.kind is EventKind.SIGNAL_RECEIVED for e in h.history())
    assert h.waiting_for == ["approve"]
    row.payload.value = "null"
    row.button.click()
    assert row.error.value == ""
    assert h.result(timeout=5) == "approved by nobody after 0"


def test_cancel(engine, coalescer):
    h = engine.start(wv_approval, 0)
    view = view_of(engine, h, coalescer)
    wait_for(lambda: label(view) == "Waiting for signal", what="the signal wait")
    view.cancel_button.click()
    wait_for(lambda: label(view) == "Cancelled", what="cancellation")
    assert h.status is Status.CANCELLED
    assert view.message.value == ""
    assert view.cancel_button.disabled


def test_terminate_asks_for_confirmation_first(engine, coalescer):
    h = engine.start(wv_approval, 0)
    view = view_of(engine, h, coalescer)
    wait_for(lambda: label(view) == "Waiting for signal", what="the signal wait")
    assert view.confirm_box.layout.display == "none"
    view.terminate_button.click()
    assert view.confirm_box.layout.display == "flex"
    assert h.status is Status.RUNNING  # nothing happened yet
    view.keep_button.click()
    assert view.confirm_box.layout.display == "none"
    assert h.status is Status.RUNNING
    view.terminate_button.click()
    view.confirm_button.click()
    wait_for(lambda: label(view) == "Terminated", what="termination")
    assert view.confirm_box.layout.display == "none"
    assert "terminated from the notebook" in view.panel.html


def test_a_control_on_a_closed_execution_says_so_inline(engine, coalescer):
    h = engine.start(wv_approval, 0)
    view = view_of(engine, h, coalescer)
    wait_for(lambda: label(view) == "Waiting for signal", what="the signal wait")
    engine.terminate(h.id)
    view._cancel()  # a click that raced with the close
    assert "ExecutionClosed" in view.message.value


# ------------------------------------------------------------------ live state


def test_running_task_shows_heartbeat_progress(engine, coalescer):
    h = engine.start(wv_slow)
    view = view_of(engine, h, coalescer)
    wait_for(
        lambda: 'data-testid="nbc-task-progress" data-fraction="0.300"' in view.panel.html,
        what="the heartbeat's progress bar (polled: heartbeats commit nothing)",
    )
    assert "half way" in view.panel.html
    assert label(view) == "Running"
    assert "running wv_blocked" in view.snapshot.message
    RELEASE.set()
    wait_for(lambda: label(view) == "Completed", what="completion")
    assert 'data-testid="nbc-task-progress"' not in view.panel.html


def test_sleeping_shows_when_it_wakes(engine, coalescer):
    h = engine.start(wv_sleeper)
    view = view_of(engine, h, coalescer)
    wait_for(lambda: label(view) == "Sleeping", what="the sleep")
    badge = view.snapshot.badge
    assert (badge.until - view.snapshot.started).total_seconds() == pytest.approx(3600, abs=1)
    assert "data-nbc-until" in view.panel.html  # the browser counts down, the kernel idles
    assert not coalescer.pending(view)  # nothing to poll while it sleeps
    static = view.snapshot_html()  # a saved output shows the due time, not a countdown
    assert "data-nbc-until" not in static and static.count("until <time") == 2
    h.terminate()


def test_retrying_shows_the_next_attempt(engine, coalescer):
    h = engine.start(wv_retrier)
    view = view_of(engine, h, coalescer)
    wait_for(lambda: label(view) == "Retrying", what="the retry wait")
    badge = view.snapshot.badge
    assert badge.detail == "wv_flaky attempt 2"  # the next attempt and badge.until is not None
    step = view.snapshot.steps[0]
    assert step.state == "retrying" and step.detail == "ValueError: not yet"
    h.terminate()


def test_failure_shows_the_error_and_its_traceback(engine, coalescer, monkeypatch):
    monkeypatch.setattr(widgets, "traceback_mapper", lambda text: text.replace("File", "FILE"))
    h = engine.start(wv_failing)
    view = view_of(engine, h, coalescer)
    wait_for(lambda: label(view) == "Failed", what="the failure")
    html = view.panel.html
    assert 'data-testid="nbc-error"' in html and "RuntimeError" in html and "boom" in html
    assert "FILE" in html  # the extension's hook maps tracebacks to cells


def test_the_log_hook_fills_the_collapsible_log(engine, coalescer, monkeypatch):
    monkeypatch.setattr(widgets, "log_source", lambda eid: [f"hello from {eid[:4]}", "<b>x"])
    h = engine.start(wv_approval, 0)
    view = view_of(engine, h, coalescer)
    wait_for(lambda: 'data-testid="nbc-log"' in view.panel.html, what="the log")
    assert "&lt;b&gt;x" in view.panel.html  # escaped
    monkeypatch.setattr(widgets, "log_source", lambda eid: 1 / 0)
    view.refresh()
    assert "the log could not be read: ZeroDivisionError" in view.panel.html
    h.terminate()


def test_a_child_link_opens_the_child_view_below(engine, coalescer):
    h = engine.start(wv_parent)
    view = view_of(engine, h, coalescer)
    wait_for(lambda: any(s.kind == "child" for s in view.snapshot.steps), what="the child")
    child_id = next(s.link for s in view.snapshot.steps if s.kind == "child")
    assert f'data-nbc-value="{child_id}"' in view.panel.html
    assert f">{child_id}</a>" in view.panel.html  # the child by its id, linked
    view.panel.send_action("open", child_id)  # the browser's click on the link
    (child_view,) = view.detail.children
    assert isinstance(child_view, ExecutionView) and child_view.id == child_id
    RELEASE.set()
    wait_for(lambda: label(view) == "Completed", what="the parent's completion")
    wait_for(lambda: label(child_view) == "Completed", what="the child's completion")
    assert f'data-nbc-value="{h.id}"' in child_view.panel.html  # "child of" links back
    view.panel.send_action("open", child_id)  # a second click closes it
    assert view.detail.children == ()


# ------------------------------------------------------------------ cost


def test_a_burst_of_notices_costs_a_few_refreshes(engine, coalescer):
    h = engine.start(wv_approval, 0)
    view = view_of(engine, h, coalescer)
    wait_for(lambda: label(view) == "Waiting for signal", what="the signal wait")
    wait_for(lambda: not coalescer.pending(view), what="a quiet view")
    writes = []
    view.panel.observe(writes.append, names="html")
    before = view.refreshes
    for _ in range(1000):
        view._on_engine_change({h.id})  # what the engine thread calls after commits
    wait_for(lambda: not coalescer.pending(view), what="the coalesced refresh")
    assert 1 <= view.refreshes - before <= 3
    assert len(writes) <= view.refreshes - before
    h.terminate()


def test_a_view_of_a_closed_execution_costs_nothing(engine, coalescer):
    h = engine.start(wv_approval, 0)
    engine.signal(h.id, "approve", {"by": "bob"})
    h.result(timeout=5)
    subscribers = len(engine.subscribers)
    view = view_of(engine, h, coalescer)
    assert view.refreshes == 1 and not view.following
    assert len(engine.subscribers) == subscribers
    assert not coalescer.pending(view)
    assert "data-nbc-since" not in view.panel.html  # no clock ticks in the browser either


def test_many_views_share_one_refresher(engine, coalescer):
    handles = [engine.start(wv_approval, 1) for _ in range(50)]
    views = [view_of(engine, h, coalescer) for h in handles]
    wait_for(
        lambda: all(label(v) == "Waiting for signal" for v in views), what="fifty signal waits"
    )
    for h in handles:
        h.signal("approve", {"by": "ann"})
    wait_for(lambda: all(label(v) == "Completed" for v in views), what="fifty completions")
    assert not any(v.following for v in views)
    assert all(v.refreshes <= 12 for v in views)


def test_an_unknown_id_is_refused(engine):
    with pytest.raises(ExecutionNotFound):
        widgets.execution_view(engine, "no-such-execution")


# ------------------------------------------------------------------ static fallback


def sanitize(text: str) -> str:
    config = configparser.ConfigParser()
    config.read(SANITIZE)
    for section in config.sections():
        text = re.sub(config[section]["regex"], config[section]["replace"], text)
    return text


def test_reprs_are_deterministic(engine, coalescer):
    first = engine.start(wv_approval, 2, id="order-1")
    second = engine.start(wv_approval, 2, id="order-2")
    texts, htmls = [], []
    for h in (first, second):
        wait_for(lambda h=h: h.waiting_for, what="the signal wait")
        h.signal("approve", {"by": "ann"})
        h.result(timeout=5)
        view = view_of(engine, h, coalescer)
        bundle = view._repr_mimebundle_()
        assert set(bundle) == {
            "text/plain",
            "text/html",
            "application/vnd.jupyter.widget-view+json",
        }
        assert repr(view) == bundle["text/plain"]
        texts.append(bundle["text/plain"])
        htmls.append(sanitize(bundle["text/html"].replace(h.id, "ID")))
    assert texts == ["<Execution wv_approval: Completed>"] * 2
    assert htmls[0] == htmls[1]
    assert "nbc-gantt" not in htmls[0]  # no timing-dependent geometry in the fallback


def test_snapshot_html_of_uuid_executions_sanitizes_alike(engine):
    htmls = []
    for _ in range(2):
        h = engine.start(wv_approval, 1)
        wait_for(lambda h=h: h.waiting_for, what="the signal wait")
        htmls.append(sanitize(widgets.execution_snapshot_html(engine, h.id)))
        assert widgets.execution_snapshot_text(engine, h.id) == "<Execution wv_approval: Running>"
        h.terminate()
    assert htmls[0] == htmls[1]
    assert "EXECUTION-ID" in htmls[0] and "TIMESTAMP" in htmls[0]


def test_public_function_uses_the_shared_refresher(engine):
    h = engine.start(wv_approval, 0)
    view = widgets.execution_view(engine, h.id)
    try:
        wait_for(lambda: label(view) == "Waiting for signal", what="the signal wait")
        view._rows["approve"].payload.value = "null"  # an explicit "no payload"
        view._rows["approve"].button.click()
        wait_for(lambda: label(view) == "Completed", what="completion")
    finally:
        view.close()
    assert not view.following


def test_a_start_not_recorded_yet_shows_starting(engine, coalescer, monkeypatch):
    h = engine.start(wv_approval, 0)
    wait_for(lambda: h.waiting_for, what="the signal wait")
    real = engine.describe

    def not_yet(execution_id):
        raise ExecutionNotFound(f"execution {execution_id!r} is starting; ask again in a moment")

    monkeypatch.setattr(engine, "describe", not_yet)  # as if start() had just returned
    view = view_of(engine, h, coalescer)
    assert label(view) == "Starting" and repr(view) == "<Execution wv_approval: Starting>"
    assert view.following and 'data-tone="starting"' in view.panel.html
    monkeypatch.setattr(engine, "describe", real)
    view._on_engine_change({h.id})  # the commit that records the start
    wait_for(lambda: label(view) == "Waiting for signal", what="the recorded start")
    h.terminate()


def test_a_signal_timeout_says_what_it_waits_for(engine, coalescer):
    """Not "sleep pending in 1 d 23 h": the timer is the timeout of a signal wait."""
    h = engine.start(wv_offer)
    view = view_of(engine, h, coalescer)
    wait_for(lambda: label(view) == "Waiting for signal", what="the signal wait")
    html = view.panel.html
    assert "waiting for signal approve, gives up " in html
    assert re.search(r"gives up <span class=\"nbc-countdown\"[^>]*>in (2 d 0 h|1 d 23 h)<", html)
    assert 'sleep <span class="nbc-step-state"' not in html and 'title="pending"' not in html
    static = view.snapshot_html()
    assert "waiting for signal approve, gives up at <time" in static
    h.signal("approve", True)
    wait_for(lambda: label(view) == "Sleeping", what="the sleep after the signal")
    html = view.panel.html
    assert "timeout of signal approve" in html and ">received<" in html
    assert 'sleep <span class="nbc-step-state"' in html  # the later sleep is a sleep
    h.terminate()


def test_an_open_execution_does_not_claim_to_be_done(engine, coalescer):
    """All its tasks done, still waiting: no full bar, no "1/1 tasks"."""
    h = engine.start(wv_offer)
    view = view_of(engine, h, coalescer)
    wait_for(lambda: label(view) == "Waiting for signal", what="the signal wait")
    assert view.snapshot.fraction is None
    assert 'data-fraction="1.000"' not in view.panel.html
    assert "1 task done" in view.panel.html and "/1 tasks" not in view.panel.html
    h.terminate()


def test_an_empty_payload_sends_nothing(engine, coalescer):
    """The 02 offer was withdrawn by a click on an empty field: None decided for the user."""
    h = engine.start(wv_approval, 0)
    view = view_of(engine, h, coalescer)
    wait_for(
        lambda: "approve" in view._rows and h.waiting_for == ["approve"],
        what="the signal button and the wait",
    )
    assert view.stop_buttons.layout.display != "none"
    row = view._rows["approve"]
    row.button.click()
    assert "nothing was sent" in row.error.value and "null" in row.error.value
    assert not any(e.kind is EventKind.SIGNAL_RECEIVED for e in h.history())
    row.payload.value = "null"
    row.button.click()
    assert h.result(timeout=5) == "approved by nobody after 0"


def test_a_task_that_succeeded_after_failures_shows_its_attempts(engine, coalescer):
    """Not "completed ... ConnectionError: attempt 2 dropped": each attempt, expandable."""
    FLAKY_CALLS.clear()
    h = engine.start(wv_persistent)
    view = view_of(engine, h, coalescer)
    assert h.result(timeout=10) == "through"
    wait_for(lambda: label(view) == "Completed", what="completion")
    (step,) = view.snapshot.steps
    assert step.state == "completed" and step.detail == ""
    for html in (view.panel.html, view.snapshot_html()):
        attempts = re.search(r'<details class="nbc-attempts".*?</details>', html)[0]
        assert "<summary" in attempts and "3 attempts" in attempts
        assert attempts.count('data-ok="false"') == 2 and attempts.count('data-ok="true"') == 1
        assert "ConnectionError: attempt 1 dropped" in attempts
        assert "ConnectionError: attempt 2 dropped" in attempts
        assert "next attempt at <time" in attempts
        beside = re.search(r">completed</span>(.*?)(<div class=\"nbc-track\"|<details)", html)
        assert "dropped" not in beside[1]  # no old error beside "completed"
    assert 'data-nbc-key="attempts:task:' in view.panel.html  # stays open across redraws


def test_the_view_shows_the_input_and_re_runs_from_here(engine, coalescer):
    h = engine.start(wv_approval, 2)
    view = view_of(engine, h, coalescer)
    wait_for(lambda: label(view) == "Waiting for signal", what="the signal wait")
    assert view.snapshot.input == "(2)"
    assert 'data-testid="nbc-input"' in view.panel.html and "(2)" in view.snapshot_html()
    h.signal("approve", {"by": "ann"})
    assert h.result(timeout=5) == "approved by ann after 2"
    wait_for(lambda: label(view) == "Completed", what="completion")
    forked = view._fork()  # what a click on "Re-run from here" does
    assert forked is not None and view.detail.children == (forked,)
    assert forked.id != h.id and engine.describe(forked.id).origin_id == h.id
    wait_for(lambda: forked.snapshot.status is not None, what="the fork's record")
    assert forked.snapshot.input == "(2)"
    axis = re.search(r'data-testid="nbc-axis".*?</div></div>', view.panel.html)[0]
    assert ">0</span>" in axis and "since the start" in axis  # the timeline's time axis
    assert engine.get(forked.id).result(timeout=5) == "approved by ann after 2"  # replayed


def test_the_panel_answers_the_browsers_ping_itself(engine, coalescer):
    """The browser pings to learn whether a kernel still serves the view; the answer
    goes back on the widget's comm and never reaches the view's actions."""
    h = engine.start(wv_approval, 0)
    view = view_of(engine, h, coalescer)
    sent, actions = [], []
    view.panel.send = sent.append  # the comm to the browser (none in a test)
    view.panel._on_action = lambda action, value: actions.append(action)
    view.panel.send_action("ping", 12345)
    assert sent == [{"pong": 12345}] and actions == []
    h.terminate()
