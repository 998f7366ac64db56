from __future__ import annotations

from datetime import timedelta

import pytest

import nbconductor as nc
from nbconductor.engine.definition import REGISTRY, version_of
from nbconductor.engine.duration import format_duration, parse_duration
from nbconductor.errors import DefinitionError, InvalidDuration, NotInWorkflow


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (3, 3.0),
        (2.5, 2.5),
        (timedelta(minutes=2), 120.0),
        ("30s", 30.0),
        ("5 minutes", 300.0),
        ("1 day", 86400.0),
        ("1h 30m", 5400.0),
        ("250ms", 0.25),
        ("2 weeks", 1209600.0),
        ("  10  ", 10.0),
    ],
)
def test_durations(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["abc", "5 parsecs", "", "-3s", -1, True, object(), "1d x"])
def test_bad_durations_say_what_to_write(value):
    with pytest.raises(InvalidDuration) as info:
        parse_duration(value, what="sleep()")
    assert "sleep()" in str(info.value)


def test_format_duration():
    assert [format_duration(s) for s in (0.25, 42, 303, 7500, 273600)] == [
        "250ms",
        "42s",
        "5m 3s",
        "2h 5m",
        "3d 4h",
    ]


def test_retry_defaults_and_backoff():
    r = nc.Retry()
    assert (r.initial, r.backoff, r.max_interval, r.max_attempts) == (1.0, 2.0, 100.0, 0)
    assert [r.delay(n) for n in (1, 2, 3, 8)] == [1.0, 2.0, 4.0, 100.0]
    assert r.allows(10_000)
    capped = nc.Retry(initial="2s", max_attempts=3, non_retryable=[KeyError, "ValueError"])
    assert capped.allows(2) and not capped.allows(3)
    assert not capped.is_retryable("KeyError")
    assert not capped.is_retryable("MyError", ["ValueError", "Exception"])
    assert capped.is_retryable("TypeError", ["Exception"])


@pytest.mark.parametrize(
    "kwargs", [{"initial": 0}, {"backoff": 0.5}, {"max_attempts": -1}, {"non_retryable": [3]}]
)
def test_bad_retry(kwargs):
    with pytest.raises((DefinitionError, InvalidDuration)):
        nc.Retry(**kwargs)


def test_workflow_must_be_async():
    with pytest.raises(DefinitionError, match="async def"):

        @nc.workflow
        def not_async():
            return 1


def test_task_outside_workflow_just_runs():
    @nc.task(retry=nc.Retry(max_attempts=3), timeout="30s")
    def add(a, b):
        return a + b

    assert add(2, 3) == 5
    assert add.options.start_to_close == 30.0
    assert add.options.retry.max_attempts == 3


def test_registry_versions_follow_source():
    @nc.workflow(name="versioned_thing")
    async def first():
        return 1

    v1 = REGISTRY.workflow("versioned_thing").version

    @nc.workflow(name="versioned_thing")
    async def second():
        return 2

    v2 = REGISTRY.workflow("versioned_thing").version
    assert v1 != v2
    assert version_of("a\nb") == version_of("a\nb")


def test_unknown_workflow_name_lists_known_ones():
    with pytest.raises(nc.NbconductorError, match="run the cell that defines it"):
        REGISTRY.workflow("no_such_workflow_anywhere")


@pytest.mark.parametrize(
    "call",
    [nc.now, nc.random, nc.uuid4, lambda: nc.side_effect(lambda: 1)],
)
def test_workflow_helpers_outside_a_workflow(call):
    with pytest.raises(NotInWorkflow, match="only works inside a running workflow"):
        call()


def test_task_helpers_outside_a_task_are_harmless():
    assert nc.cancelled() is False
    assert nc.heartbeat(details="x") is None
