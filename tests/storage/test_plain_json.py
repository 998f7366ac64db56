"""dumps_plain, the reusable encoder of plain values, writes what json.dumps writes;
loads_plain reads back what json.loads reads (or fails as it does)."""

from __future__ import annotations

import json
import threading

import pytest

from nbconductor.storage.plain_json import dumps_plain, loads_plain

VALUES = [
    None, True, False, 0, -7, 2**70, 2.5, -0.0, 1e300, "", "héllo \u2603 \"q\" \\ \n",
    [], {}, [1, [2, [3, {"a": None}]]], {"args": [5], "kwargs": {"k": "v"}},
    {"started_at": "2026-12-01T03:30:00.123456+00:00", "worker": "pid 12"},
]  # fmt: skip


def test_it_writes_what_compact_json_dumps_writes():
    for value in VALUES:
        assert dumps_plain(value) == json.dumps(value, separators=(",", ":")), value


def test_threads_may_share_it():
    # No circular-reference bookkeeping is kept between calls: concurrent calls on
    # nested values never see each other's containers.
    value = {"a": [{"b": [i for i in range(50)]} for _ in range(20)]}
    expected = json.dumps(value, separators=(",", ":"))
    wrong = []

    def encode_many() -> None:
        for _ in range(300):
            if dumps_plain(value) != expected:
                wrong.append(1)

    threads = [threading.Thread(target=encode_many) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong


def test_loads_plain_reads_what_json_loads_reads():
    texts = [json.dumps(value) for value in VALUES] + [
        dumps_plain(value) for value in VALUES
    ]  # json.dumps leaves spaces after separators; dumps_plain is compact
    texts += [" 1", "1 ", "\n[1, 2]\n", "NaN", "-Infinity", '"\\u00e9"']
    for text in texts:
        assert repr(loads_plain(text)) == repr(json.loads(text)), text


@pytest.mark.parametrize("text", ["", "   ", "[1, 2", "1 2", "{'a': 1}", "nul"])
def test_loads_plain_fails_as_json_loads_fails(text):
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as got:
        loads_plain(text)
    assert str(got.value) == str(expected.value)
