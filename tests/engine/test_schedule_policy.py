"""Schedule specs and policy decisions, driven by times passed in (no clock, no waiting)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbconductor.engine.schedules.policy import (
    CATCHUP_POLICIES,
    ON_TIME_GRACE,
    OVERLAP_POLICIES,
    Decision,
    ScheduleSpec,
    describe,
    due_fires,
    fire_id,
    jitter_offset,
    next_fire,
    overlap_decision,
    release_buffered,
)
from nbconductor.errors import ScheduleError, WorkflowNotRegistered

UTC = UTC
PARIS = ZoneInfo("Europe/Paris")
PROPERTY = settings(database=None, deadline=None, max_examples=200)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def hourly(**overrides) -> ScheduleSpec:
    return ScheduleSpec.create("hourly", "report", cron="0 * * * *", **overrides)


def simulate(spec: ScheduleSpec, created: datetime, uptimes: list[tuple[datetime, datetime]]):
    """Drive the decisions as the engine will: evaluate on start-up, then sleep until
    :func:`next_fire`; the kernel is closed between the ``uptimes``."""
    started: list[datetime] = []
    cursor = created
    for up, down in uptimes:
        now = up
        while True:
            fires = due_fires(spec, cursor, now)
            started += fires
            if fires:
                cursor = fires[-1]
            wake = next_fire(spec, now)
            if wake is None or wake > down:
                break
            now = wake
    return started


# A kernel open 07:30-09:30, closed over 10:00-13:00, open again 13:20-15:10.
CREATED = utc(2026, 1, 5, 7, 30)
DOWNTIME = [(CREATED, utc(2026, 1, 5, 9, 30)), (utc(2026, 1, 5, 13, 20), utc(2026, 1, 5, 15, 10))]


def hours(*values: int) -> list[datetime]:
    return [utc(2026, 1, 5, h) for h in values]


# --- catch-up across a downtime --------------------------------------------------------


@pytest.mark.parametrize(
    ("catchup", "window", "expected"),
    [
        ("none", "1 day", hours(8, 9, 14, 15)),
        ("latest", "1 day", hours(8, 9, 13, 14, 15)),
        ("latest", "10 minutes", hours(8, 9, 14, 15)),  # 13:00 is 20 minutes old at 13:20
        ("latest", None, hours(8, 9, 13, 14, 15)),
        ("all", "1 day", hours(8, 9, 10, 11, 12, 13, 14, 15)),
        ("all", "2h", hours(8, 9, 12, 13, 14, 15)),  # 11:20 is the window's edge
        ("all", None, hours(8, 9, 10, 11, 12, 13, 14, 15)),
    ],
)
def test_each_catchup_policy_across_a_downtime(catchup, window, expected):
    spec = hourly(catchup=catchup, catchup_window=window)
    assert simulate(spec, CREATED, DOWNTIME) == expected


@pytest.mark.parametrize("catchup", CATCHUP_POLICIES)
def test_a_fire_within_the_grace_is_on_time_for_every_policy(catchup):
    spec = hourly(catchup=catchup)
    late = utc(2026, 1, 5, 13, 0, 59)
    assert due_fires(spec, utc(2026, 1, 5, 9), late) == (
        hours(13) if catchup != "all" else hours(10, 11, 12, 13)
    )
    assert due_fires(spec, None, late) == hours(13)  # no history: nothing to catch up


def test_catchup_none_skips_a_fire_one_second_past_the_grace():
    spec = hourly(catchup="none")
    assert due_fires(spec, utc(2026, 1, 5, 12), utc(2026, 1, 5, 13, 1, 0)) == hours(13)
    assert due_fires(spec, utc(2026, 1, 5, 12), utc(2026, 1, 5, 13, 1, 1)) == []
    assert due_fires(spec, utc(2026, 1, 5, 12), utc(2026, 1, 5, 13, 2), grace=300) == hours(13)


def test_catchup_latest_prefers_an_on_time_fire_over_missed_ones():
    spec = hourly(catchup="latest")
    assert due_fires(spec, utc(2026, 1, 5, 8), utc(2026, 1, 5, 13, 0, 10)) == hours(13)
    assert due_fires(spec, utc(2026, 1, 5, 8), utc(2026, 1, 5, 12, 40)) == hours(12)


def test_catchup_all_comes_in_bounded_batches_oldest_first():
    spec = ScheduleSpec.create("m", "w", cron="* * * * *", catchup="all", catchup_window=None)
    now = utc(2026, 1, 8)
    cursor = utc(2026, 1, 5)
    first = due_fires(spec, cursor, now, limit=100)
    assert first == [cursor + timedelta(minutes=i) for i in range(1, 101)]
    second = due_fires(spec, first[-1], now, limit=100)
    assert second[0] == first[-1] + timedelta(minutes=1)
    assert len(due_fires(spec, cursor, now)) == 1000  # MAX_FIRES_PER_CALL


def test_the_window_never_drops_on_time_fires():
    spec = hourly(catchup="all", catchup_window=0)
    assert due_fires(spec, utc(2026, 1, 5, 8), utc(2026, 1, 5, 13, 0, 30)) == hours(13)


def test_nothing_is_due_again_once_handled_or_when_the_clock_goes_back():
    spec = hourly(catchup="all")
    assert due_fires(spec, utc(2026, 1, 5, 13), utc(2026, 1, 5, 13, 0, 30)) == []
    assert due_fires(spec, utc(2026, 1, 5, 14), utc(2026, 1, 5, 13, 30)) == []


def test_a_crash_right_after_firing_gives_the_same_execution_id_again():
    spec = hourly(catchup="latest")
    executions: dict[str, datetime] = {}
    cursor, now = utc(2026, 1, 5, 12), utc(2026, 1, 5, 13, 0, 5)
    for fire in due_fires(spec, cursor, now):
        executions.setdefault(fire_id(spec.id, fire), fire)
    # The process dies before it records the new cursor; after the restart the
    # same fire is due again and maps to the same id, which already exists.
    for fire in due_fires(spec, cursor, now + timedelta(seconds=20)):
        assert fire_id(spec.id, fire) in executions
    assert list(executions) == ["hourly@2026-01-05T13:00:00Z"]


# --- pause, resume, start_at / end_at ----------------------------------------------------


def test_a_paused_schedule_starts_nothing_and_resume_does_not_catch_up():
    spec = hourly(catchup="all", paused=True, note="maintenance")
    assert due_fires(spec, utc(2026, 1, 5, 8), utc(2026, 1, 5, 13, 0, 5)) == []
    assert next_fire(spec, utc(2026, 1, 5, 13, 0, 5)) == utc(2026, 1, 5, 14)  # still known
    resumed = spec.update(paused=False)
    # The engine passes the resume time as the cursor: the paused hours stay skipped.
    resumed_at = utc(2026, 1, 5, 13, 30)
    assert due_fires(resumed, resumed_at, resumed_at) == []
    assert due_fires(resumed, resumed_at, utc(2026, 1, 5, 14)) == hours(14)
    # With the old cursor instead, they would all be caught up.
    assert due_fires(resumed, utc(2026, 1, 5, 8), resumed_at) == hours(9, 10, 11, 12, 13)


def test_fires_exist_only_between_start_at_and_end_at_inclusive():
    spec = hourly(catchup="all", start_at=utc(2026, 1, 5, 10), end_at=utc(2026, 1, 5, 12))
    assert due_fires(spec, utc(2026, 1, 5, 6), utc(2026, 1, 5, 14)) == hours(10, 11, 12)
    assert next_fire(spec, utc(2026, 1, 5, 6)) == utc(2026, 1, 5, 10)
    assert next_fire(spec, utc(2026, 1, 5, 11)) == utc(2026, 1, 5, 12)
    assert next_fire(spec, utc(2026, 1, 5, 12)) is None
    assert due_fires(spec, None, utc(2026, 1, 5, 9, 59)) == []


def test_an_interval_schedule_counts_from_start_at():
    spec = ScheduleSpec.create("i", "w", every="15 minutes", start_at=utc(2026, 1, 5, 9, 7))
    assert next_fire(spec, utc(2026, 1, 5)) == utc(2026, 1, 5, 9, 7)
    assert next_fire(spec, utc(2026, 1, 5, 9, 7)) == utc(2026, 1, 5, 9, 22)
    unanchored = ScheduleSpec.create("j", "w", every=900)
    assert next_fire(unanchored, utc(2026, 1, 5, 9, 7)) == utc(2026, 1, 5, 9, 15)


def test_start_at_and_end_at_read_text_and_naive_times_in_the_schedule_zone():
    spec = ScheduleSpec.create(
        "z",
        "w",
        cron="0 9 * * *",
        timezone="Europe/Paris",
        start_at=datetime(2026, 1, 5, 9),
        end_at="2026-07-01T09:00",
    )
    assert spec.start_at == utc(2026, 1, 5, 8)
    assert spec.end_at == utc(2026, 7, 1, 7)
    iso = ScheduleSpec.create("z", "w", cron="0 9 * * *", start_at="2026-01-05T09:00:00Z")
    assert iso.start_at == utc(2026, 1, 5, 9)


# --- overlap ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "open_runs", "buffered", "expected"),
    [
        *[(policy, 0, 0, Decision.START) for policy in OVERLAP_POLICIES],
        ("skip", 1, 0, Decision.SKIP),
        ("skip", 3, 0, Decision.SKIP),
        ("buffer_one", 1, 0, Decision.BUFFER),
        ("buffer_one", 1, 1, Decision.SKIP),
        ("buffer_one", 0, 1, Decision.SKIP),  # the waiting fire goes first and fills the slot
        ("buffer_all", 1, 0, Decision.BUFFER),
        ("buffer_all", 1, 250, Decision.BUFFER),
        ("buffer_all", 0, 2, Decision.BUFFER),  # keep the order
        ("cancel_other", 1, 0, Decision.CANCEL_THEN_START),
        ("cancel_other", 2, 0, Decision.CANCEL_THEN_START),
        ("cancel_other", 0, 1, Decision.START),
        ("terminate_other", 1, 0, Decision.TERMINATE_THEN_START),
        ("terminate_other", 0, 1, Decision.START),
        ("allow_all", 5, 0, Decision.START),
    ],
)
def test_overlap_decisions(policy, open_runs, buffered, expected):
    assert overlap_decision(policy, open_runs, buffered) is expected


def run_overlapping(policy: str, fires: int, run_length: int) -> tuple[list[int], int]:
    """Fires at t=0,1,2,...; each run lasts ``run_length``; returns start times and skips."""
    open_until: list[int] = []
    buffered, starts, skipped = 0, [], 0
    for t in range(fires + 10 * run_length * fires):
        open_until = [end for end in open_until if end > t]
        while release_buffered(len(open_until), buffered):
            buffered -= 1
            starts.append(t)
            open_until.append(t + run_length)
        if t >= fires:
            continue
        decision = overlap_decision(policy, len(open_until), buffered)
        if decision is Decision.SKIP:
            skipped += 1
        elif decision is Decision.BUFFER:
            buffered += 1
        else:
            if decision is not Decision.START:
                open_until = []  # cancelled or terminated
            starts.append(t)
            open_until.append(t + run_length)
    return starts, skipped


@pytest.mark.parametrize(
    ("policy", "starts", "skipped"),
    [
        ("skip", [0, 3, 6], 6),
        ("buffer_one", [0, 3, 6, 9], 5),
        ("buffer_all", [0, 3, 6, 9, 12, 15, 18, 21, 24], 0),
        ("cancel_other", list(range(9)), 0),
        ("terminate_other", list(range(9)), 0),
        ("allow_all", list(range(9)), 0),
    ],
)
def test_overlap_policies_over_runs_three_times_longer_than_the_period(policy, starts, skipped):
    assert run_overlapping(policy, fires=9, run_length=3) == (starts, skipped)


def test_overlap_decision_refuses_unknown_policies_and_negative_counts():
    with pytest.raises(
        ScheduleError, match=r"unknown overlap policy 'queue'; choose one of skip, buffer_one"
    ):
        overlap_decision("queue", 0, 0)
    with pytest.raises(ScheduleError, match=r"open_runs \(-1\)"):
        overlap_decision("skip", -1, 0)
    assert release_buffered(0, 2) == 1
    assert release_buffered(1, 2) == 0
    assert release_buffered(0, 0) == 0


# --- ids and jitter --------------------------------------------------------------------


def test_fire_id_is_the_schedule_id_and_the_nominal_instant_in_utc():
    assert fire_id("daily-report", utc(2026, 11, 23, 8)) == "daily-report@2026-11-23T08:00:00Z"
    in_paris = datetime(2026, 11, 23, 9, tzinfo=PARIS)
    assert fire_id("daily-report", in_paris) == "daily-report@2026-11-23T08:00:00Z"
    assert fire_id("a:b.c_d", utc(2026, 1, 1, 0, 0, 0, 5)) == "a:b.c_d@2026-01-01T00:00:00.000005Z"
    with pytest.raises(ScheduleError, match="has no time zone"):
        fire_id("daily-report", datetime(2026, 11, 23, 8))
    with pytest.raises(ScheduleError, match="schedule id 'a@b' is not valid"):
        fire_id("a@b", utc(2026, 11, 23, 8))


schedule_ids = st.from_regex(r"\A[A-Za-z0-9_.:-]{1,40}\Z")
nominals = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@PROPERTY
@given(
    schedule_id=schedule_ids,
    nominal=nominals,
    jitter=st.floats(min_value=0, max_value=1e7, allow_nan=False, exclude_min=True),
)
def test_jitter_is_deterministic_and_within_range(schedule_id, nominal, jitter):
    offset = jitter_offset(schedule_id, nominal, jitter)
    assert 0 <= offset < jitter
    assert jitter_offset(schedule_id, nominal.astimezone(PARIS), jitter) == offset
    assert fire_id(schedule_id, nominal) == fire_id(schedule_id, nominal)


def test_jitter_spreads_fires_and_zero_jitter_is_zero():
    offsets = [jitter_offset("s", utc(2026, 1, 1) + timedelta(hours=h), 60.0) for h in range(500)]
    assert min(offsets) < 3 and max(offsets) > 57
    assert len(set(offsets)) == 500
    assert jitter_offset("s", utc(2026, 1, 1), 0) == 0.0
    assert jitter_offset("s", utc(2026, 1, 1), 60) != jitter_offset("t", utc(2026, 1, 1), 60)
    with pytest.raises(ScheduleError, match="jitter -1 must be >= 0"):
        jitter_offset("s", utc(2026, 1, 1), -1)


# --- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"id": "daily report"},
            ScheduleError,
            "schedule id 'daily report' is not valid; use 1 to 200 letters",
        ),
        ({"id": "a/b"}, ScheduleError, "schedule id 'a/b' is not valid"),
        ({"id": ""}, ScheduleError, "schedule id '' is not valid"),
        ({"workflow": ""}, ScheduleError, "workflow '' is not a workflow name"),
        (
            {"cron": None},
            ScheduleError,
            "give exactly one of cron=.*and every=.*; neither was given",
        ),
        ({"every": "1h"}, ScheduleError, r"both were given \(cron='0 9 \* \* \*', every='1h'\)"),
        ({"cron": "0 9 * *"}, ScheduleError, r"cron expression '0 9 \* \*' has 4 fields"),
        ({"cron": "0 25 * * *"}, ScheduleError, "hour field '25' is not valid"),
        (
            {"timezone": "Europe/Pariss"},
            ScheduleError,
            r"unknown time zone 'Europe/Pariss' \(did you mean 'Europe/Paris'\?\)",
        ),
        (
            {"overlap": "queue"},
            ScheduleError,
            "unknown overlap policy 'queue'; choose one of skip, buffer_one, buffer_all, cancel_other, terminate_other, allow_all",
        ),
        (
            {"catchup": "some"},
            ScheduleError,
            "unknown catchup policy 'some'; choose one of none, latest, all",
        ),
        (
            {"jitter": -5},
            ScheduleError,
            "schedule 'daily': jitter: -5 must be a finite duration of zero or more",
        ),
        (
            {"jitter": "soon"},
            ScheduleError,
            "schedule 'daily': jitter: cannot read 'soon' as a duration",
        ),
        ({"catchup_window": "-1h"}, ScheduleError, "catchup_window: cannot read '-1h'"),
        ({"catchup_window": -60}, ScheduleError, "catchup_window: -60 must be a finite duration"),
        (
            {"start_at": utc(2026, 2, 1), "end_at": utc(2026, 1, 1)},
            ScheduleError,
            "end_at 2026-01-01T00:00:00Z is before start_at 2026-02-01T00:00:00Z",
        ),
        (
            {"start_at": "next monday"},
            ScheduleError,
            "start_at: cannot read 'next monday' as a time",
        ),
        ({"end_at": 1767225600}, ScheduleError, "end_at: 1767225600 is not a datetime"),
        ({"args": "abc"}, ScheduleError, "args 'abc' must be a list or tuple"),
        ({"kwargs": [1]}, ScheduleError, r"kwargs \[1\] must be a dict"),
        ({"cron": None, "every": "0.5s"}, ScheduleError, "every: '0.5s' is too short"),
        ({"cron": None, "every": "sometimes"}, ScheduleError, "every: cannot read 'sometimes'"),
        (
            {"known_workflows": {"reports", "orders"}},
            WorkflowNotRegistered,
            r"no workflow named 'report' is registered; did you mean 'reports'\? \(registered: orders, reports\)",
        ),
    ],
)
def test_invalid_schedules_are_refused_naming_the_bad_value(kwargs, error, message):
    arguments = {"id": "daily", "workflow": "report", "cron": "0 9 * * *", **kwargs}
    with pytest.raises(error, match=message):
        ScheduleSpec.create(arguments.pop("id"), arguments.pop("workflow"), **arguments)


def test_the_constructor_validates_too():
    with pytest.raises(ScheduleError, match=r"jitter -1\.0 must be >= 0"):
        ScheduleSpec("s", "w", cron="0 9 * * *", jitter=-1.0)
    with pytest.raises(ScheduleError, match="catchup_window nan must be >= 0 or None"):
        ScheduleSpec("s", "w", cron="0 9 * * *", catchup_window=float("nan"))
    with pytest.raises(ScheduleError, match=r"start_at: .* has no time zone"):
        ScheduleSpec("s", "w", cron="0 9 * * *", start_at=datetime(2026, 1, 1))
    with pytest.raises(ScheduleError, match="kwargs keys must be strings"):
        ScheduleSpec("s", "w", cron="0 9 * * *", kwargs={1: 2})


def test_a_known_workflow_passes():
    spec = hourly(known_workflows=["report"])
    assert spec.workflow == "report"


# --- update and the JSON round trip ------------------------------------------------------


def test_update_validates_and_switches_between_cron_and_every():
    spec = hourly(overlap="buffer_one")
    every = spec.update(every="10 minutes")
    assert (every.cron, every.every, every.overlap) == (None, 600.0, "buffer_one")
    back = every.update(cron="*/10 * * * *")
    assert (back.cron, back.every) == ("*/10 * * * *", None)
    with pytest.raises(ScheduleError, match="unknown overlap policy 'never'"):
        spec.update(overlap="never")
    assert spec.overlap == "buffer_one"  # specs are values: the failed update changed nothing
    with pytest.raises(ScheduleError, match="the id cannot change"):
        spec.update(id="other")
    with pytest.raises(ScheduleError, match="cannot update colour"):
        spec.update(colour="red")
    with pytest.raises(WorkflowNotRegistered, match="no workflow named 'gone'"):
        spec.update(workflow="gone", known_workflows=["report"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def specs(draw) -> ScheduleSpec:
    start = draw(st.none() | nominals)
    end = None
    if draw(st.booleans()):
        end = (start or utc(2000, 1, 1)) + timedelta(seconds=draw(st.integers(0, 10**9)))
    trigger = draw(
        st.sampled_from(["0 9 * * MON-FRI", "*/15 * * * *", "@daily", "30 2 1 * *"]).map(
            lambda cron: {"cron": cron}
        )
        | st.integers(1, 10**7).map(lambda seconds: {"every": seconds})
    )
    return ScheduleSpec.create(
        draw(schedule_ids),
        draw(st.from_regex(r"\A[a-z_]{1,12}\Z")),
        **trigger,
        timezone=draw(st.sampled_from(["UTC", "Europe/Paris", "America/New_York"])),
        args=draw(st.lists(json_values, max_size=3)),
        kwargs=draw(st.dictionaries(st.text(max_size=5), json_values, max_size=3)),
        jitter=draw(st.floats(0, 3600, allow_nan=False)),
        overlap=draw(st.sampled_from(OVERLAP_POLICIES)),
        catchup=draw(st.sampled_from(CATCHUP_POLICIES)),
        catchup_window=draw(st.none() | st.floats(0, 1e7, allow_nan=False)),
        start_at=start,
        end_at=end,
        paused=draw(st.booleans()),
        note=draw(st.text(max_size=20)),
    )


@PROPERTY
@given(spec=specs())
def test_specs_round_trip_through_plain_json(spec):
    data = json.loads(json.dumps(spec.to_dict()))
    assert ScheduleSpec.from_dict(data) == spec
    assert data["format"] == 1


def test_from_dict_refuses_unknown_keys_and_newer_formats():
    data = hourly().to_dict()
    with pytest.raises(ScheduleError, match="unknown keys: colour"):
        ScheduleSpec.from_dict({**data, "colour": "red"})
    with pytest.raises(ScheduleError, match="format 2; this nbconductor reads format 1"):
        ScheduleSpec.from_dict({**data, "format": 2})


# --- describe --------------------------------------------------------------------------


def test_describe_lists_the_next_fires_in_utc_and_local_time():
    spec = ScheduleSpec.create(
        "daily-report",
        "report",
        cron="0 9 * * MON-FRI",
        timezone="Europe/Paris",
        jitter="30s",
        overlap="skip",
        catchup="latest",
        catchup_window="1h",
    )
    description = describe(spec, utc(2026, 3, 26, 12))
    assert [f.nominal for f in description.upcoming] == [
        utc(2026, 3, 27, 8),  # Friday, CET
        utc(2026, 3, 30, 7),  # Monday, CEST: same local time across the change
        utc(2026, 3, 31, 7),
        utc(2026, 4, 1, 7),
        utc(2026, 4, 2, 7),
    ]
    assert {f.local.strftime("%H:%M") for f in description.upcoming} == {"09:00"}
    first = description.upcoming[0]
    assert first.execution_id == "daily-report@2026-03-27T08:00:00Z"
    assert 0 <= (first.starts_at - first.nominal).total_seconds() < 30
    text = description.explanation
    assert "cron '0 9 * * MON-FRI' in Europe/Paris" in text
    assert "that fire is skipped" in text
    assert "only the most recent missed fire starts, if it is at most 1h old" in text
    assert "delayed by up to 30s" in text
    assert "DST" in text
    json.dumps(description.to_dict())


@pytest.mark.parametrize(
    ("overrides", "phrase"),
    [
        ({"overlap": "buffer_one"}, "only one fire waits"),
        ({"overlap": "buffer_all"}, "start one at a time, in order"),
        ({"overlap": "cancel_other"}, "that run is cancelled"),
        ({"overlap": "terminate_other"}, "that run is terminated"),
        ({"overlap": "allow_all"}, "Runs may overlap"),
        ({"catchup": "none"}, "at most 1m late"),
        (
            {"catchup": "all", "catchup_window": "2h"},
            "every fire missed in the last 2h starts, oldest first",
        ),
        ({"catchup": "all", "catchup_window": None}, "every fire missed however long ago starts"),
        ({"paused": True, "note": "db migration"}, "It is paused (db migration)"),
    ],
)
def test_describe_explains_each_policy(overrides, phrase):
    assert phrase in describe(hourly(**overrides), utc(2026, 1, 5)).explanation


def test_describe_stops_at_end_at():
    spec = hourly(start_at=utc(2026, 1, 5, 10), end_at=utc(2026, 1, 5, 12))
    description = describe(spec, utc(2026, 1, 5, 6), n=5)
    assert [f.nominal for f in description.upcoming] == hours(10, 11, 12)
    assert "from 2026-01-05T10:00:00Z and until 2026-01-05T12:00:00Z" in description.explanation
    assert describe(spec, utc(2026, 1, 6)).upcoming == ()
    assert "no fires left" in describe(spec, utc(2026, 1, 6)).explanation
    assert ON_TIME_GRACE == 60.0
