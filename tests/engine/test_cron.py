"""Triggers: cron against croniter and against a brute-force DST oracle; intervals; errors."""

from __future__ import annotations

import functools
import itertools
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nbconductor.engine.schedules.cron import (
    EPOCH,
    CronTrigger,
    IntervalTrigger,
    format_instant,
    load_zone,
    resolve_local,
    to_utc,
)
from nbconductor.errors import ScheduleError

UTC = UTC
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
MINUTE = timedelta(minutes=1)
# No example database: nothing written into the working tree, runs are reproducible
# from the printed seed.
PROPERTY = settings(database=None, deadline=None, max_examples=150)
SLOW_PROPERTY = settings(database=None, deadline=None, max_examples=40)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(trigger, after: datetime, count: int) -> list[datetime]:
    return list(trigger.fires_between(after, after + timedelta(days=3660), limit=count))


# --- strategies ------------------------------------------------------------------------


def _field(low: int, high: int, names: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    value = st.integers(low, high)
    named = st.sampled_from(names) if names else value.map(str)
    single = st.one_of(value.map(str), named) if names else value.map(str)
    pair = st.tuples(value, value).map(sorted)
    return st.one_of(
        st.just("*"),
        single,
        st.lists(value, min_size=2, max_size=4, unique=True).map(
            lambda items: ",".join(map(str, sorted(items)))
        ),
        pair.map(lambda bounds: f"{bounds[0]}-{bounds[1]}"),
        st.integers(2, max(2, (high - low) // 2)).map(lambda step: f"*/{step}"),
        st.tuples(pair, st.integers(2, 7)).map(lambda t: f"{t[0][0]}-{t[0][1]}/{t[1]}"),
    )


MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


def _cron(fields: tuple[str, ...]) -> str:
    minute, hour, day, month, weekday = fields
    if "#" in weekday or weekday.startswith("L"):
        # croniter intersects an nth weekday with the day of month ('1 * MON#2'
        # never fires); such expressions are tested on their own below.
        day = "*"
    return " ".join((minute, hour, day, month, weekday))


cron_expressions = st.tuples(
    _field(0, 59),
    _field(0, 23),
    # Days up to 28 so that every generated expression can fire in every month;
    # 'L' and nth-weekday forms are drawn now and then.
    st.one_of(_field(1, 28), st.just("L")),
    _field(1, 12, MONTHS),
    st.one_of(_field(0, 6, DAYS), st.sampled_from(["MON#2", "FRI#1", "L5"])),
).map(_cron)

# Expressions the brute-force oracle below can match without croniter's extras, and
# that fire at least once a week, mostly around the hours where DST changes happen.
dst_expressions = st.tuples(
    st.one_of(_field(0, 59), st.sampled_from(["0", "30", "*/15", "0,30", "*"])),
    st.one_of(_field(0, 23), st.sampled_from(["1", "2", "3", "1-3", "*", "0-4/2", "2,3"])),
    st.just("*"),
    st.just("*"),
    st.one_of(st.just("*"), st.sampled_from(["0", "MON-FRI", "0,6", "SUN,MON"])),
).map(" ".join)

instants = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2060, 12, 31), timezones=st.just(UTC)
)


@functools.cache
def transitions(zone_name: str, year: int) -> tuple[datetime, ...]:
    """Every UTC-offset change of a zone in a year, found by scanning and bisecting."""
    zone = ZoneInfo(zone_name)
    found = []
    step = timedelta(minutes=30)
    t = utc(year, 1, 1)
    while t.year == year:
        if t.astimezone(zone).utcoffset() != (t + step).astimezone(zone).utcoffset():
            low, high = int(t.timestamp()), int((t + step).timestamp())
            while high - low > 1:
                middle = (low + high) // 2
                before = datetime.fromtimestamp(low, zone).utcoffset()
                if datetime.fromtimestamp(middle, zone).utcoffset() == before:
                    low = middle
                else:
                    high = middle
            found.append(datetime.fromtimestamp(high, UTC))
        t += step
    return tuple(found)


def near_transition(instant: datetime, zone: ZoneInfo, margin: timedelta) -> bool:
    offset = instant.astimezone(zone).utcoffset()
    return any(
        (instant + delta).astimezone(zone).utcoffset() != offset for delta in (-margin, margin)
    )


# --- cron against croniter -------------------------------------------------------------


@PROPERTY
@given(expression=cron_expressions, t=instants)
def test_next_after_matches_croniter_in_utc(expression, t):
    expected = croniter(expression, t, ret_type=datetime).get_next()
    got = CronTrigger(expression, "UTC").next_after(t)
    assert got == expected
    assert got.tzinfo is UTC


@PROPERTY
@given(expression=cron_expressions, t=instants)
def test_next_after_matches_croniter_in_a_zone_without_dst(expression, t):
    kolkata = ZoneInfo("Asia/Kolkata")  # +05:30 all year, since 1945
    expected = croniter(expression, t.astimezone(kolkata), ret_type=datetime).get_next()
    assert CronTrigger(expression, "Asia/Kolkata").next_after(t) == expected


@PROPERTY
@given(expression=cron_expressions, t=instants)
def test_next_after_matches_croniter_in_paris_away_from_dst_changes(expression, t):
    got = CronTrigger(expression, "Europe/Paris").next_after(t)
    # Away from the changes the two agree; at them, croniter fires repeated
    # local times twice, which is what this module corrects.
    assume(not near_transition(t, PARIS, timedelta(days=1)))
    assume(not near_transition(got, PARIS, timedelta(days=1)))
    expected = croniter(expression, t.astimezone(PARIS), ret_type=datetime).get_next()
    assert got == expected
    assert got.astimezone(PARIS).replace(tzinfo=None) == expected.replace(tzinfo=None)


ZONES = ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]


@PROPERTY
@given(expression=cron_expressions, zone=st.sampled_from(ZONES), t=instants)
def test_fires_are_strictly_increasing_and_agree_with_next_after(expression, zone, t):
    trigger = CronTrigger(expression, zone)
    sequence = fires(trigger, t, 12)
    assert sequence, "every generated expression fires within ten years"
    assert sequence[0] == trigger.next_after(t) > t
    for earlier, later in itertools.pairwise(sequence):
        assert later > earlier
        assert trigger.next_after(earlier) == later


@PROPERTY
@given(expression=dst_expressions, zone=st.sampled_from(ZONES), t=instants, span=st.integers(1, 96))
def test_last_between_is_the_last_fire_of_fires_between(expression, zone, t, span):
    trigger = CronTrigger(expression, zone)
    until = t + timedelta(hours=span)
    every = list(trigger.fires_between(t, until))
    assert trigger.last_between(t, until) == (every[-1] if every else None)


# --- DST: a brute-force oracle and exact instants ----------------------------------------


def oracle(expression: str, zone: ZoneInfo, after: datetime, until: datetime) -> list[datetime]:
    """The documented DST rules, applied by walking UTC minute by minute.

    A local time fires the first time the clock shows it; local times the clock
    jumps over fire at the first instant after the jump.
    """
    expanded, _ = croniter.expand(expression)
    minutes, hours, days, months, weekdays = (
        None if values == ["*"] else set(values) for values in expanded
    )

    def matches(wall: datetime) -> bool:
        day_ok = days is None or wall.day in days
        weekday_ok = weekdays is None or wall.isoweekday() % 7 in weekdays
        day = (day_ok or weekday_ok) if days and weekdays else (day_ok and weekday_ok)
        return (
            (minutes is None or wall.minute in minutes)
            and (hours is None or wall.hour in hours)
            and (months is None or wall.month in months)
            and day
        )

    result, seen = [], set()
    u = after.replace(second=0, microsecond=0) - timedelta(days=1)
    previous = None
    while u <= until:
        wall = u.astimezone(zone).replace(tzinfo=None)
        fire = wall not in seen and matches(wall)
        if previous is not None and wall - previous > MINUTE:
            skipped = previous + MINUTE
            while skipped < wall:
                fire = fire or matches(skipped)
                skipped += MINUTE
        seen.add(wall)
        previous = wall
        if fire and u > after:
            result.append(u)
        u += MINUTE
    return result


@SLOW_PROPERTY
@given(
    expression=dst_expressions,
    zone_name=st.sampled_from(["Europe/Paris", "America/New_York", "Australia/Lord_Howe"]),
    year=st.sampled_from([2024, 2026]),
    which=st.integers(0, 1),
    offset=st.integers(-36 * 3600, 36 * 3600),
)
def test_fires_around_dst_changes_follow_the_documented_rules(
    expression, zone_name, year, which, offset
):
    zone = ZoneInfo(zone_name)
    change = transitions(zone_name, year)[which]
    after = change + timedelta(seconds=offset)
    until = after + timedelta(days=2)
    got = list(CronTrigger(expression, zone_name).fires_between(after, until))
    assert got == oracle(expression, zone, after, until)


@pytest.mark.parametrize(
    ("zone", "expression", "after", "expected_utc", "expected_local"),
    [
        # Spring forward in Paris, 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC).
        (
            "Europe/Paris",
            "30 2 * * *",
            utc(2026, 3, 28, 12),
            [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)],
            ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"],
        ),
        # Several local times inside the gap collapse into one fire.
        (
            "Europe/Paris",
            "*/20 2 * * *",
            utc(2026, 3, 28, 12),
            [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 0)],
            ["2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"],
        ),
        # Fall back in Paris, 2026-10-25 03:00 CEST -> 02:00 CET (01:00 UTC): once.
        (
            "Europe/Paris",
            "30 2 * * *",
            utc(2026, 10, 24, 12),
            [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
            ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
        ),
        # Hourly: the repeated hour's second pass has no fire.
        (
            "Europe/Paris",
            "0 * * * *",
            utc(2026, 10, 24, 22, 30),
            [utc(2026, 10, 24, 23), utc(2026, 10, 25, 0), utc(2026, 10, 25, 2)],
            ["2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00"],
        ),
        # Spring forward in New York, 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC).
        (
            "America/New_York",
            "30 2 * * *",
            utc(2026, 3, 7, 12),
            [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)],
            ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"],
        ),
        # Fall back in New York, 2026-11-01 02:00 EDT -> 01:00 EST (06:00 UTC): once.
        (
            "America/New_York",
            "30 1 * * *",
            utc(2026, 10, 31, 12),
            [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)],
            ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
        ),
        (
            "America/New_York",
            "0 * * * *",
            utc(2026, 11, 1, 3, 30),
            [utc(2026, 11, 1, 4), utc(2026, 11, 1, 5), utc(2026, 11, 1, 7)],
            ["2026-11-01T00:00:00-04:00", "2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00"],
        ),
    ],
)
def test_dst_changes_fire_at_exact_instants(zone, expression, after, expected_utc, expected_local):
    trigger = CronTrigger(expression, zone)
    got = fires(trigger, after, len(expected_utc))
    assert got == expected_utc
    assert [f.astimezone(ZoneInfo(zone)).isoformat() for f in got] == expected_local


def test_croniter_alone_fires_a_repeated_time_twice():
    # Why this module resolves wall-clock times itself: croniter, given an aware
    # start, fires 02:30 on both passes of Paris's repeated hour.
    walls = croniter("30 2 * * *", utc(2026, 10, 24, 12).astimezone(PARIS), ret_type=datetime)
    raw = [walls.get_next().astimezone(UTC) for _ in range(3)]
    assert raw == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30), utc(2026, 10, 26, 1, 30)]
    assert fires(CronTrigger("30 2 * * *", "Europe/Paris"), utc(2026, 10, 24, 12), 2) == [
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 26, 1, 30),
    ]


def test_starting_inside_the_repeated_hour_does_not_fire_its_second_pass():
    trigger = CronTrigger("*/20 * * * *", "Europe/Paris")
    second_pass = utc(2026, 10, 25, 1, 10)  # 02:10 CET, the second 02:10 of the night
    assert second_pass.astimezone(PARIS).fold == 1
    assert trigger.next_after(second_pass) == utc(2026, 10, 25, 2, 0)  # 03:00 CET
    assert trigger.last_between(utc(2026, 10, 24), second_pass) == utc(2026, 10, 25, 0, 40)


def test_resolve_local_applies_the_gap_and_overlap_rules():
    assert resolve_local(datetime(2026, 3, 29, 2, 30), PARIS) == utc(2026, 3, 29, 1)
    assert resolve_local(datetime(2026, 10, 25, 2, 30), PARIS) == utc(2026, 10, 25, 0, 30)
    assert resolve_local(datetime(2026, 10, 25, 2, 30, fold=1), PARIS) == utc(2026, 10, 25, 0, 30)
    assert resolve_local(datetime(2026, 7, 1, 9), PARIS) == utc(2026, 7, 1, 7)
    # Lord Howe moves its clocks by 30 minutes.
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    assert resolve_local(datetime(2026, 10, 4, 2, 15), lord_howe) == utc(2026, 10, 3, 15, 30)
    # Samoa skipped 2011-12-30 entirely: the whole day resolves to the next midnight.
    apia = ZoneInfo("Pacific/Apia")
    assert resolve_local(datetime(2011, 12, 30, 9), apia) == utc(2011, 12, 30, 10)
    daily = CronTrigger("0 9 * * *", "Pacific/Apia")
    assert [f.astimezone(apia).isoformat() for f in fires(daily, utc(2011, 12, 29, 0), 3)] == [
        "2011-12-29T09:00:00-10:00",
        "2011-12-31T00:00:00+14:00",
        "2011-12-31T09:00:00+14:00",
    ]


def test_cron_trigger_accepts_aliases_names_and_special_days():
    assert CronTrigger("@daily").next_after(utc(2026, 1, 5, 9)) == utc(2026, 1, 6)
    assert CronTrigger("@hourly").next_after(utc(2026, 1, 5, 9, 1)) == utc(2026, 1, 5, 10)
    weekdays = CronTrigger("0 9 * * mon-fri", "Europe/Paris")
    assert weekdays.next_after(utc(2026, 11, 20, 12)) == utc(2026, 11, 23, 8)
    assert CronTrigger("0 0 L * *").next_after(utc(2026, 2, 3)) == utc(2026, 2, 28)
    assert CronTrigger("0 0 * * MON#1").next_after(utc(2026, 2, 3)) == utc(2026, 3, 2)


def test_cron_trigger_normalizes_whitespace_and_is_a_value():
    trigger = CronTrigger("  0   9 * *\tMON-FRI ", ZoneInfo("Europe/Paris"))
    assert trigger.expression == "0 9 * * MON-FRI"
    assert trigger.timezone == "Europe/Paris"
    assert trigger == CronTrigger("0 9 * * MON-FRI", "Europe/Paris")
    assert trigger.describe() == "cron '0 9 * * MON-FRI' in Europe/Paris"


def test_next_after_is_strictly_after_a_fire_time():
    trigger = CronTrigger("0 9 * * *")
    assert trigger.next_after(utc(2026, 1, 5, 9)) == utc(2026, 1, 6, 9)
    assert trigger.next_after(utc(2026, 1, 5, 8, 59, 59, 999999)) == utc(2026, 1, 5, 9)


def test_times_must_be_aware_and_come_back_in_utc():
    trigger = CronTrigger("0 9 * * *", "Europe/Paris")
    tokyo = timezone(timedelta(hours=9))
    assert trigger.next_after(datetime(2026, 1, 5, 12, tzinfo=tokyo)) == utc(2026, 1, 5, 8)
    with pytest.raises(ScheduleError, match=r"has no time zone.*aware datetime"):
        trigger.next_after(datetime(2026, 1, 5, 9))
    with pytest.raises(ScheduleError, match="'2026-01-05' is not a datetime"):
        to_utc("2026-01-05", "now")  # type: ignore[arg-type]


# --- interval triggers -----------------------------------------------------------------


def test_interval_fires_on_round_utc_times_by_default():
    trigger = IntervalTrigger("15 minutes")
    assert trigger.every_seconds == 900.0
    assert trigger.next_after(utc(2026, 1, 5, 9, 7)) == utc(2026, 1, 5, 9, 15)
    assert trigger.next_after(utc(2026, 1, 5, 9, 15)) == utc(2026, 1, 5, 9, 30)
    assert fires(trigger, utc(2026, 1, 5, 9), 3) == [
        utc(2026, 1, 5, 9, 15),
        utc(2026, 1, 5, 9, 30),
        utc(2026, 1, 5, 9, 45),
    ]
    assert trigger.describe() == "every 15m"


def test_interval_counts_from_its_anchor_also_before_it():
    anchor = utc(2026, 1, 5, 9, 0, 10)
    trigger = IntervalTrigger(timedelta(hours=1), anchor)
    assert trigger.next_after(utc(2026, 1, 5, 12, 30)) == utc(2026, 1, 5, 13, 0, 10)
    assert trigger.next_after(utc(2026, 1, 5, 7)) == utc(2026, 1, 5, 7, 0, 10)
    assert trigger.last_between(utc(2026, 1, 5, 9), utc(2026, 1, 5, 12)) == utc(
        2026, 1, 5, 11, 0, 10
    )
    assert trigger.last_between(utc(2026, 1, 5, 11, 30), utc(2026, 1, 5, 12)) is None
    assert trigger.describe() == "every 1h from 2026-01-05T09:00:10Z"


def test_interval_is_elapsed_time_so_dst_moves_its_local_time():
    trigger = IntervalTrigger("1 day", utc(2026, 3, 27, 8))  # 09:00 in Paris, in winter
    local = [f.astimezone(PARIS).hour for f in fires(trigger, utc(2026, 3, 27, 12), 3)]
    assert local == [9, 10, 10]  # 24 hours apart, across the spring change


@PROPERTY
@given(
    every=st.integers(1, 10 * 86400),
    anchor=instants,
    t=instants,
    micros=st.integers(0, 999_999),
)
def test_interval_next_after_is_the_next_multiple(every, anchor, t, micros):
    step = timedelta(seconds=every, microseconds=micros)
    trigger = IntervalTrigger(step, anchor)
    fire = trigger.next_after(t)
    assert t < fire <= t + step
    assert (fire - anchor) % step == timedelta(0)
    assert trigger.last_between(t - 3 * step, t) == fire - step


def test_interval_rejects_short_or_unreadable_periods():
    with pytest.raises(
        ScheduleError, match=r"every: '500ms' is too short; the shortest interval is 1 second"
    ):
        IntervalTrigger("500ms")
    with pytest.raises(ScheduleError, match="every: cannot read 'often' as a duration"):
        IntervalTrigger("often")
    with pytest.raises(ScheduleError, match=r"anchor: .* has no time zone"):
        IntervalTrigger(60, datetime(2026, 1, 1))


# --- validation messages ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        (
            "* * * *",
            r"'\* \* \* \*' has 4 fields; expected 5: minute hour day-of-month month day-of-week",
        ),
        (
            "0 0 9 * * MON",
            r"'0 0 9 \* \* MON' has 6 fields; expected 5.*Seconds and year fields are not supported.*every=",
        ),
        ("", "'' has 0 fields; expected 5"),
        (
            "61 * * * *",
            r"'61 \* \* \* \*': minute field '61' is not valid \(out of range\); expected 0-59",
        ),
        ("0 24 * * *", r"hour field '24' is not valid \(out of range\); expected 0-23"),
        ("0 9 32 * *", "day-of-month field '32' is not valid"),
        ("0 9 * 13 *", "month field '13' is not valid.*JAN-DEC"),
        (
            "0 9 * * MON-FRX",
            r"'0 9 \* \* MON-FRX': day-of-week field 'MON-FRX' is not valid; expected 0-7 or SUN-SAT",
        ),
        ("*/0 * * * *", r"minute field '\*/0' is not valid \(a step of 0\)"),
        (
            "0 9 * * MON#1,TUE",
            r"day-of-week field 'MON#1,TUE' is not valid \(plain days cannot be mixed",
        ),
        (
            "0 0 31 2 *",
            r"'0 0 31 2 \*' is not valid: Day\(s\) \[31\] can never occur in month\(s\) \[2\]",
        ),
        ("H * * * *", r"minute field 'H' uses hashed or random values \(H, R\)"),
        ("0 R(0-5) * * *", r"hour field 'R\(0-5\)' uses hashed or random values"),
        ("@reboot", "unknown alias '@reboot'; the aliases are @yearly"),
        (
            "1-0 * * * *",
            r"minute field '1-0' has the reversed range 1-0; write it low to high \(0-1\)",
        ),
        ("0 22-2 * * *", r"hour field '22-2' has the reversed range 22-2"),
        ("0 9 * * FRI-MON", r"day-of-week field 'FRI-MON' has the reversed range FRI-MON"),
        ("0 9 * 1,NOV-FEB *", r"month field '1,NOV-FEB' has the reversed range NOV-FEB"),
        ("*/5 9 * * 5-1/2", r"day-of-week field '5-1/2' has the reversed range 5-1"),
    ],
)
def test_bad_cron_expressions_are_named_with_what_is_wrong(expression, message):
    with pytest.raises(ScheduleError, match=message):
        CronTrigger(expression)


def test_an_expression_that_never_fires_is_refused():
    with pytest.raises(ScheduleError, match=r"cron expression '0 0 1 \* MON#2' never fires"):
        CronTrigger("0 0 1 * MON#2")  # croniter: the 1st that is a second Monday


def test_a_cron_expression_must_be_text():
    with pytest.raises(
        ScheduleError, match=r"cron expression 42 is not a string; write e.g. '0 9 \* \* MON-FRI'"
    ):
        CronTrigger(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "Mars/Olympus",
            r"unknown time zone 'Mars/Olympus'; use an IANA name such as 'Europe/Paris'",
        ),
        ("Europe/Pariss", r"unknown time zone 'Europe/Pariss' \(did you mean 'Europe/Paris'\?\)"),
        ("europe/paris", r"unknown time zone 'europe/paris' \(did you mean 'Europe/Paris'\?\)"),
        ("Paris", r"unknown time zone 'Paris' \(did you mean 'Europe/Paris'\?\)"),
        ("Europe", "unknown time zone 'Europe'"),
        ("../etc/passwd", r"unknown time zone '\.\./etc/passwd'"),
        ("", "time zone '' is not a time zone name"),
        ("localtime", "time zone 'localtime' depends on the machine"),
    ],
)
def test_unknown_time_zones_are_named_with_a_hint(name, message):
    with pytest.raises(ScheduleError, match=message):
        CronTrigger("0 9 * * *", name)
    with pytest.raises(ScheduleError, match=message):
        load_zone(name)


def test_format_instant_is_utc_with_z():
    assert format_instant(datetime(2026, 11, 23, 9, tzinfo=PARIS)) == "2026-11-23T08:00:00Z"
    assert format_instant(utc(2026, 11, 23, 8, 0, 0, 250)) == "2026-11-23T08:00:00.000250Z"
    assert format_instant(EPOCH) == "1970-01-01T00:00:00Z"
