"""A view's saved snapshot: displayed beside the widget in a kernel, then kept up to
date as the execution changes (not as its clocks tick), its final state always written
(issue item 1; the browser side is tests/browser/test_lab_saved_view.py)."""

from __future__ import annotations

import threading
from datetime import UTC

import pytest

import nbconductor as nc
from nbconductor import widgets
from nbconductor.testing import wait_for
from nbconductor.widgets.execution_view import ExecutionView

GO = threading.Event()


@nc.task
def ss_wait() -> str:
    GO.wait(10)
    return "done"


@nc.workflow
async def ss_flow() -> str:
    return await ss_wait()


@pytest.fixture
def published(monkeypatch):
    sent: list[tuple[str, str, bool]] = []
    lock = threading.Lock()

    def publish(bundle, display_id, update):
        with lock:
            sent.append((bundle["text/html"], display_id, update))

    monkeypatch.setattr(widgets, "snapshot_publisher", publish)
    GO.clear()
    yield sent
    GO.set()


def test_the_snapshot_is_its_own_output_and_ends_on_the_last_state(engine, coalescer, published):
    h = engine.start(ss_flow)
    view = ExecutionView(engine, h.id, coalescer=coalescer)
    bundle = view._repr_mimebundle_()
    assert "text/html" not in bundle  # it would go stale beside the widget
    assert "application/vnd.jupyter.widget-view+json" in bundle
    [(first, display_id, update)] = published
    assert not update and 'class="nbc-saved-snapshot"' in first and "Saved view as of" in first
    assert "Completed" not in first
    GO.set()
    assert h.result(timeout=5) == "done"
    wait_for(lambda: not view.following, what="the view to see the end")
    last, same_id, update = published[-1]
    assert same_id == display_id and update
    assert "Completed" in last and "&#x27;done&#x27;" in last
    count = len(published)
    view.refresh()  # nothing changed: nothing more is written
    assert len(published) == count
    view.close()


def test_without_a_kernel_the_bundle_keeps_its_html(engine, coalescer):
    h = engine.start(ss_flow)
    GO.set()
    h.result(timeout=5)
    view = ExecutionView(engine, h.id, coalescer=coalescer)
    assert "Completed" in view._repr_mimebundle_()["text/html"]
    view.close()


def test_clocks_alone_do_not_rewrite_the_snapshot():
    from datetime import datetime

    from nbconductor.widgets.saved_snapshot import SavedSnapshot

    sent = []
    saved = SavedSnapshot(every=0)
    widgets.snapshot_publisher = lambda *args: sent.append(args)
    try:
        now = datetime.now(UTC)
        saved.show('<span data-nbc-since="x">1 s</span>', now)
        saved.offer(lambda: '<span data-nbc-since="x">9 s</span>', now, final=False)
        assert len(sent) == 1
        saved.offer(lambda: '<span data-nbc-since="x">9 s</span> Completed', now, final=False)
        assert len(sent) == 2 and sent[-1][2] is True
    finally:
        widgets.snapshot_publisher = None
