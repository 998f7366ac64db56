"""The shortcuts on the hot path give the text the general codec path gives."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

import pytest

from nbconductor.engine.payload import Payloads, event_data
from nbconductor.errors import PayloadError
from nbconductor.storage import codec
from nbconductor.storage.memory import MemoryStore


class Color(str, enum.Enum):
    RED = "red"


class Count(int):
    pass


ARGUMENTS = [
    (), (0,), (1, -2, 2**70), (True, None, "x"), (2.5, -0.0), ("é \u2603 \"q\"",),
    (float("nan"),), (float("inf"),), (Color.RED,), ([1, 2],), ({"a": 1},),
    ((1, 2),), (datetime(2026, 1, 1, tzinfo=UTC),), ("a" * 40,),
]  # fmt: skip


@pytest.mark.parametrize("args", ARGUMENTS, ids=repr)
def test_encode_input_writes_what_the_codec_writes(args):
    for payloads in (Payloads(), Payloads(store=MemoryStore(), inline_limit=32)):
        large = payloads._large
        expected = codec.encode({"args": list(args), "kwargs": {}}, large=large)
        assert payloads.encode_input(args, {}, what="task t") == expected
        value = payloads.decode_input(expected)
        assert repr(payloads.decode_input(payloads.encode_input(args, {}, what="t"))) == repr(value)


def test_an_int_subclass_is_refused_as_the_codec_refuses_it():
    with pytest.raises(PayloadError, match="Count"):
        Payloads().encode_input((Count(3),), {}, what="task t")


def test_a_long_string_still_goes_to_the_store():
    store = MemoryStore()
    payloads = Payloads(store=store, inline_limit=8)
    text = payloads.encode_input(("a" * 100,), {}, what="task t")
    assert codec.TAG in text  # a reference, not the string
    assert payloads.captures == 1


def test_event_data_with_one_payload_embeds_it_as_the_general_form_does():
    assert (
        event_data(None, input='{"args":[1],"kwargs":{}}') == '{"input":{"args":[1],"kwargs":{}}}'
    )
    assert event_data(None, value=None) == "{}"
    assert event_data({"a": 1}, result="2") == '{"a":1,"result":2}'
