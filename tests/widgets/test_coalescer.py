"""The shared refresher: coalescing, rate limits, polls, urgency, forgetting."""

from __future__ import annotations

import threading
import time

from nbconductor.testing import wait_for
from nbconductor.widgets.coalescer import Coalescer, shared


class FakeView:
    def __init__(self, poll=None, cost=0.0, fail=False):
        self.times: list[float] = []
        self.threads: set[str] = set()
        self.poll = poll
        self.cost = cost
        self.fail = fail

    def refresh(self):
        self.times.append(time.monotonic())
        self.threads.add(threading.current_thread().name)
        if self.cost:
            threading.Event().wait(self.cost)  # simulated work, not synchronisation
        if self.fail:
            raise RuntimeError("broken view")
        return self.poll


def test_a_burst_of_marks_is_one_refresh(coalescer):
    view = FakeView()
    for _ in range(1000):
        coalescer.mark(view)
    wait_for(lambda: view.times and not coalescer.pending(view), what="the refresh")
    # The first mark refreshes at once; marks arriving during that refresh make one
    # more, an interval later.
    assert len(view.times) <= 2
    assert view.threads == {"nbconductor-widgets"}


def test_refreshes_of_one_view_are_spaced_by_the_interval():
    c = Coalescer(interval=0.05)
    try:
        view = FakeView()
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            c.mark(view)  # an engine committing as fast as it can
            threading.Event().wait(0.001)
        wait_for(lambda: not c.pending(view), what="the last refresh")
        gaps = [b - a for a, b in zip(view.times, view.times[1:], strict=False)]
        assert len(view.times) <= 0.5 / 0.05 + 2
        assert min(gaps) >= 0.05 * 0.9
    finally:
        c.stop()


def test_urgent_marks_skip_the_interval():
    c = Coalescer(interval=10.0)
    try:
        view = FakeView()
        c.mark(view)
        wait_for(lambda: len(view.times) == 1, what="the first refresh")
        c.mark(view)  # due in 10 s
        c.mark(view, urgent=True)  # a click: now
        wait_for(lambda: len(view.times) == 2, what="the urgent refresh", timeout=2)
    finally:
        c.stop()


def test_a_view_asking_for_a_poll_gets_one(coalescer):
    view = FakeView(poll=0.05)
    coalescer.mark(view)
    wait_for(lambda: len(view.times) >= 3, what="polls")
    view.poll = None
    count = len(view.times)
    wait_for(lambda: not coalescer.pending(view), what="the polling to stop")
    assert len(view.times) <= count + 1


def test_forget_drops_a_pending_refresh():
    c = Coalescer(interval=0.2)
    try:
        view = FakeView()
        c.mark(view)
        wait_for(lambda: view.times, what="the first refresh")
        c.mark(view)  # due 0.2 s after the first
        c.forget(view)
        assert not c.pending(view)
    finally:
        c.stop()


def test_a_broken_view_does_not_stop_the_others(coalescer, caplog):
    broken, fine = FakeView(fail=True), FakeView()
    coalescer.mark(broken)
    coalescer.mark(fine)
    wait_for(lambda: broken.times and fine.times, what="both refreshes")
    coalescer.mark(fine, urgent=True)
    wait_for(lambda: len(fine.times) == 2, what="the thread to go on")
    assert "broken view" in caplog.text


def test_rounds_rest_in_proportion_to_their_cost():
    c = Coalescer(interval=0.0, duty=0.5)
    try:
        views = [FakeView(cost=0.02, poll=0.0) for _ in range(3)]
        for v in views:
            c.mark(v)
        wait_for(lambda: sum(len(v.times) for v in views) >= 12, what="several rounds")
        c.stop()
        times = sorted(t for v in views for t in v.times)
        busy = 0.02 * len(times)
        assert times[-1] - times[0] >= busy * 0.9  # it rested about as long as it worked
    finally:
        c.stop()


def test_the_shared_coalescer_is_one():
    assert shared() is shared()


def test_a_slow_view_is_refreshed_less_often():
    c = Coalescer(interval=0.01, duty=0.25)
    try:
        slow, quick = FakeView(cost=0.04), FakeView()
        for _ in range(2):
            for view in (slow, quick):
                c.mark(view)
            wait_for(lambda: not c.pending(slow) and not c.pending(quick), what="a round")
        c.mark(slow)
        c.mark(quick)
        wait_for(lambda: not c.pending(slow), what="the slow view's refresh")
        gaps = [b - a for a, b in zip(slow.times, slow.times[1:], strict=False)]
        assert gaps[-1] >= 0.04 / 0.25 * 0.9  # four times its own cost
    finally:
        c.stop()


def test_flush_refreshes_the_views_marked_for_a_change_now():
    """Before an engine stops: a change marked a moment ago reaches its view at once,
    and a view only waiting for its next poll is left alone."""
    c = Coalescer(interval=30.0)  # a second refresh would otherwise wait 30 s
    try:
        changed, polling = FakeView(), FakeView(poll=30.0)
        c.mark(changed)
        c.mark(polling)
        wait_for(lambda: changed.times and polling.times, what="the first refreshes")
        wait_for(lambda: not c.pending(changed), what="the first round to end")
        c.mark(changed)  # a change: due 30 s after the last refresh
        assert c.flush(timeout=5.0)
        assert len(changed.times) == 2
        assert len(polling.times) == 1
        assert c.flush(timeout=0.1)  # nothing left to do
    finally:
        c.stop()
