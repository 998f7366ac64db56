"""What recovery does per recorded step stays small: closed work is not parsed, recorded
calls are checked without ``inspect`` where a count settles it, plain results are not
written and parsed again. Each shortcut must answer exactly as the long way."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

import pytest

from nbconductor.engine.arguments import check_call
from nbconductor.engine.live import pending_work
from nbconductor.engine.payload import PLAIN, read_data
from nbconductor.storage import codec
from nbconductor.storage.records import EventKind, EventRecord

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _history(*events: tuple) -> list[EventRecord]:
    return [
        EventRecord("x", seq, kind, AT, command, name, attempt, data)
        for seq, (kind, command, name, attempt, data) in enumerate(events, start=1)
    ]


def test_pending_work_parses_only_what_is_still_open():
    history = _history(
        (EventKind.EXECUTION_STARTED, None, None, None, "{}"),
        # Closed work whose data is not JSON: reading it would raise.
        (EventKind.TASK_SCHEDULED, 1, "done", None, "not json"),
        (EventKind.TASK_COMPLETED, 1, "done", 1, "not json"),
        (EventKind.TIMER_STARTED, 2, None, None, "not json"),
        (EventKind.TIMER_FIRED, 2, None, None, "not json"),
        (EventKind.TASK_SCHEDULED, 3, "gave_up", None, '{"input":{"args":[3]}}'),
        (EventKind.TASK_FAILED, 3, "gave_up", 1, '{"final":true}'),
        (EventKind.TASK_HEARTBEAT, 3, "gave_up", 1, '{"details":9}'),
        # Open: a retry waits, with the checkpoint of a heartbeat before the failure.
        (EventKind.TASK_SCHEDULED, 4, "flaky", None, '{"input":{"args":[4]}}'),
        (EventKind.TASK_HEARTBEAT, 4, "flaky", 1, '{"details":{"page":7}}'),
        (
            EventKind.TASK_FAILED,
            4,
            "flaky",
            1,
            '{"retry_at":"2026-01-01T00:00:05+00:00"}',
        ),
        # Open: running, checkpointed by a heartbeat.
        (EventKind.TASK_SCHEDULED, 5, "slow", None, '{"input":{"args":[5]}}'),
        (EventKind.TASK_HEARTBEAT, 5, "slow", 1, '{"details":[1,2]}'),
        (EventKind.TIMER_STARTED, 6, None, None, '{"fire_at":1767225600.5}'),
    )
    tasks, timers = pending_work(history)

    assert sorted(tasks) == [4, 5]
    flaky, slow = tasks[4], tasks[5]
    assert (flaky.name, flaky.input_text, flaky.failures) == ("flaky", '{"args":[4]}', 1)
    assert flaky.retry_at == datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC).timestamp()
    assert flaky.heartbeat_text == '{"page":7}'
    assert (slow.failures, slow.retry_at, slow.heartbeat_text) == (0, None, "[1,2]")
    assert timers == {6: 1767225600.5}


def _plain(a, b, c=3): ...
def _positional_only(a, /, b=2): ...
def _keyword_only(a, *, b): ...
def _var(a, *rest, **named): ...
def _nothing(): ...


CALLS = [((), {}), ((1,), {}), ((1, 2), {}), ((1, 2, 3), {}), ((1, 2, 3, 4), {})]
CALLS += [((1,), {"b": 2}), ((), {"a": 1, "b": 2}), ((1, 2), {"c": 3}), ((1,), {"z": 0})]


@pytest.mark.parametrize("fn", [_plain, _positional_only, _keyword_only, _var, _nothing])
@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_a_call_is_accepted_or_refused_exactly_as_bind_does(fn, args, kwargs):
    signature = inspect.signature(fn)
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        with pytest.raises(TypeError) as refused:
            check_call(signature, args, kwargs, "task t")
        assert str(refused.value) == f"task t(): {exc}"
    else:
        check_call(signature, args, kwargs, "task t")


@pytest.mark.parametrize(
    "value",
    [0, -1, 2**70, 1.5, float("inf"), True, False, None, "", "text", '{"__nbc__": "x"}',
     [1, "a"], {"k": [1, 2]}, b"bytes", datetime(2026, 1, 1, tzinfo=UTC), (1, 2)],
)  # fmt: skip
def test_a_result_field_decodes_as_the_codec_round_trip_does(value):
    text = codec.encode(value, what="a result")
    data = read_data('{"result":' + text + "}")  # as an event's data is read
    decoded = PLAIN.payload_field(data, "result")
    assert decoded == codec.decode(text)
    assert type(decoded) is type(codec.decode(text))
