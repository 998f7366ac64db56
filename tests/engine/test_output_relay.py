"""The stream proxies of a process that runs attempts for an engine elsewhere: an
attempt's writes go to its sink, bounded and throttled; everything else passes."""

from __future__ import annotations

import io
import threading

from nbconductor.engine.runners import output_relay
from nbconductor.engine.runners.output_relay import MAX_PENDING, _Relayed, relaying
from nbconductor.testing import wait_for


def test_an_attempts_writes_go_to_its_sink_and_the_rest_passes_through():
    original = io.StringIO()
    stream = _Relayed(original, "stdout")
    sent: list = []
    stream.write("before\n")
    with relaying(sent.append, 10.0):
        stream.write("one\n")  # the first piece goes at once
        stream.write("two\n")  # held back by the interval, sent when the attempt ends
    stream.write("after\n")
    assert original.getvalue() == "before\nafter\n"
    assert sent == [[("stdout", "one\n")], [("stdout", "two\n")]]


def test_a_held_back_piece_is_sent_while_the_attempt_still_runs():
    sent: list = []
    arrived = threading.Event()
    stream = _Relayed(io.StringIO(), "stderr")

    def send(pieces):
        sent.append(pieces)
        if len(sent) == 2:
            arrived.set()

    with relaying(send, 0.05):
        stream.write("first\n")
        stream.write("then a long computation\n")
        wait_for(arrived.is_set, what="the held-back line, sent by the timer")
    assert sent == [[("stderr", "first\n")], [("stderr", "then a long computation\n")]]


def test_a_task_printing_in_a_tight_loop_keeps_only_the_newest_text_waiting():
    stream = _Relayed(io.StringIO(), "stdout")
    rest: list = []
    with relaying(lambda pieces: None, 3600.0, rest=rest):
        stream.write("x\n")  # sent: the interval starts
        for i in range(100_000):
            stream.write(f"line {i:06d}\n")
    assert sum(len(text) for _, text in rest) <= MAX_PENDING
    assert rest[-1] == ("stdout", "line 099999\n")


def test_writes_after_the_attempt_ended_are_dropped_not_sent():
    sent: list = []
    with relaying(sent.append, 10.0):
        sink = output_relay._sink.get()
    sink.write("stdout", "from a thread the task left running\n")
    assert sent == []


def test_pieces_that_are_not_stream_text_pairs_are_ignored(capsys):
    from nbconductor.engine.task_runner import Attempt

    attempt = Attempt.__new__(Attempt)  # only its identity is used for routing
    output_relay.write_as(attempt, [("stdout", "ok\n"), ("nope", "x"), ("stdout", 3), "junk"])
    output_relay.write_as(attempt, "not a list")
    assert capsys.readouterr().out == "ok\n"
