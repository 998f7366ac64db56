"""dumps_plain, the reusable encoder of plain values, writes what json.dumps writes."""

from __future__ import annotations

import json
import threading

from nbconductor.storage.codec import dumps_plain

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
