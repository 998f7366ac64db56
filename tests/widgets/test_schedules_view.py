"""The schedules view and the cron preview."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import nbconductor as nc
from nbconductor import widgets
from nbconductor.storage.records import Status
from nbconductor.testing import wait_for
from nbconductor.widgets.execution_view import ExecutionView
from nbconductor.widgets.schedules_view import SchedulePreview, SchedulesView, cron_preview

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@nc.workflow
async def sv_report(day: str = "today") -> str:
    return f"report for {day}"


def test_cron_preview_in_the_schedules_zone():
    preview = cron_preview(cron="0 9 * * MON-FRI", timezone="Europe/Paris", now=NOW, n=3)
    assert [f["local"] for f in preview["upcoming"]] == [
        "2026-11-24T09:00:00+01:00",
        "2026-11-25T09:00:00+01:00",
        "2026-11-26T09:00:00+01:00",
    ]
    assert "skipped" in preview["explanation"]  # what the default overlap policy does
    html = widgets.cron_preview_html(cron="0 9 * * MON-FRI", timezone="Europe/Paris", now=NOW)
    assert "2026-11-24 09:00:00 +01:00" in html and "Europe/Paris" in html


def test_cron_preview_explains_bad_input():
    assert "cron" in cron_preview(cron="61 * * * *")["error"]
    assert "error" in cron_preview(cron="0 9 * * *", timezone="Mars/Olympus")
    assert "error" in cron_preview()  # neither cron nor every
    html = widgets.cron_preview_html(cron="nope")
    assert 'data-testid="nbc-preview-error"' in html


def test_preview_widget_follows_its_fields():
    preview = SchedulePreview(now=NOW)
    assert preview.output.value.count('data-testid="nbc-next-fire"') == 5
    preview.every.value = "15 minutes"
    assert "exactly one of cron= and every=" in preview.output.value  # not a silent choice
    preview.cron.value = ""
    assert "2026-11-23 12:15:00" in preview.output.value
    preview.overlap.value = "buffer_all"
    assert "waiting fires start one at a time" in preview.output.value
    preview.every.value = ""
    preview.cron.value = "bad cron"
    assert "nbc-preview-error" in preview.output.value
    assert isinstance(widgets.schedule_preview(cron="@daily"), SchedulePreview)


def test_schedules_view_buttons(engine, coalescer):
    engine.schedules.create("nightly", sv_report, cron="0 2 * * *", timezone="Europe/Paris")
    view = SchedulesView(engine, coalescer=coalescer)
    (card,) = view._cards.values()
    html = card.panel.html
    assert 'data-schedule-id="nightly"' in html and "Active" in html
    assert "Europe/Paris" in html and "none yet" in html
    assert not card.pause.disabled and card.resume.disabled

    card.pause.click()
    assert engine.schedules.get("nightly").paused
    wait_for(lambda: "Paused" in card.panel.html, what="the paused state")
    assert card.pause.disabled and not card.resume.disabled
    card.resume.click()
    wait_for(lambda: "Active" in card.panel.html, what="the resumed state")

    card.trigger.click()
    (run_view,) = view.detail.children  # trigger-now opens the run it started
    assert isinstance(run_view, ExecutionView) and run_view.id.startswith("nightly@")
    wait_for(lambda: run_view.snapshot.status is Status.COMPLETED, what="the run")
    wait_for(lambda: 'data-testid="nbc-run-link"' in card.panel.html, what="the last run")
    assert "Completed" in card.panel.html
    card.panel.send_action("open", run_view.id)  # a click on the run's link
    (again,) = view.detail.children
    assert again.id == run_view.id and again is not run_view


def test_schedule_changes_made_from_code_show_up(engine, coalescer):
    view = SchedulesView(engine, coalescer=coalescer, poll=0.05)
    assert "no schedules" in view.empty.value
    engine.schedules.create("hourly", sv_report, every="1h")
    wait_for(lambda: "hourly" in view._cards, what="the new schedule (polled)")
    engine.schedules.delete("hourly")
    wait_for(lambda: not view._cards, what="the schedule to go")
    view.close()
    assert view._on_engine_change not in engine.subscribers


def test_trigger_skipped_by_the_overlap_policy_says_so(engine, coalescer):
    @nc.workflow(name="sv_waits", signals=["go"])
    async def waits() -> None:
        await nc.signal("go")

    engine.schedules.create("busy", waits, every="1h", overlap="skip")
    view = SchedulesView(engine, coalescer=coalescer)
    card = view._cards["busy"]
    card.trigger.click()
    card.trigger.click()
    assert "skipped it" in card.error.value
    for run in engine.schedules.get("busy").open_runs:
        engine.terminate(run)


def test_reprs(engine, coalescer):
    engine.schedules.create("b-daily", sv_report, cron="0 9 * * *")
    engine.schedules.create("a-weekly", sv_report, cron="0 9 * * MON")
    engine.schedules.pause("a-weekly")
    view = widgets.schedules_view(engine)
    try:
        bundle = view._repr_mimebundle_()
        assert bundle["text/plain"] == "<Schedules: 2 (a-weekly, b-daily), 1 paused>"
        assert bundle["text/html"] == widgets.schedules_snapshot_html(engine)
        assert widgets.schedules_snapshot_text(engine) == bundle["text/plain"]
        assert bundle["text/html"].count('data-testid="nbc-schedule"') == 2
    finally:
        view.close()


def test_a_change_made_from_code_shows_without_waiting_for_a_poll(engine, coalescer):
    engine.schedules.create("hourly", sv_report, every="1 hour")
    view = SchedulesView(engine, coalescer=coalescer, poll=3600.0)
    (card,) = view._cards.values()
    assert "Active" in card.panel.html
    engine.schedules.pause("hourly", note="holidays")
    wait_for(lambda: "Paused" in card.panel.html, timeout=5, what="the pause")
    assert "holidays" in card.panel.html and card.pause.disabled
    engine.schedules.resume("hourly")
    wait_for(lambda: "Active" in card.panel.html, timeout=5, what="the resume")
    view.close()


def test_the_preview_names_the_workflow_and_creates_the_schedule(engine, coalescer):
    view = SchedulesView(engine, coalescer=coalescer)
    preview = view.preview
    assert "sv_report" in preview.workflow.options
    preview.workflow.value = "sv_report"
    preview.cron.value = ""
    preview.every.value = "1 hour"
    shown = html.unescape(preview.output.value)
    assert "Starts workflow 'sv_report'" in shown and "'workflow'" not in shown
    preview.schedule_id.value = "hourly-report"
    preview.args.value = '{"day": "monday"}'  # not a list: said inline, nothing created
    preview.create_button.click()
    assert "JSON list" in preview.created.value and engine.schedules.list() == []
    preview.args.value = '["monday"]'
    preview.create_button.click()
    assert "created schedule hourly-report" in preview.created.value
    info = engine.schedules.get("hourly-report")
    assert info.spec.workflow == "sv_report" and info.spec.args == ("monday",)
    assert info.spec.every is not None and info.spec.cron is None
    wait_for(lambda: "hourly-report" in view._cards, timeout=5, what="the new card")
    preview.create_button.click()  # the same id again: the engine's error, inline
    assert "ScheduleError" in preview.created.value
    view.close()
