"""Signals declared with what they carry get a form; only a signal that carries nothing
gets a bare button that sends None (issue item 4)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import nbconductor as nc
from nbconductor.engine.signal_payload import declared_signals, parse_kind
from nbconductor.errors import DefinitionError
from nbconductor.testing import wait_for
from nbconductor.widgets.execution_view import ExecutionView


@dataclass
class SfRefund:
    amount: float
    reason: str


@nc.workflow(
    signals={"approve": {"ok": True, "by": "ann"}, "withdraw": None, "refund": SfRefund, "n": int}
)
async def sf_offer() -> object:
    first = await nc.signal("approve")
    second = await nc.signal("withdraw")
    third = await nc.signal("refund")
    fourth = await nc.signal("n")
    return [first, second, third, fourth]


def _view(engine, coalescer, handle) -> ExecutionView:
    view = ExecutionView(engine, handle.id, coalescer=coalescer)
    # Declared signals have rows at once; wait for the workflow to reach its wait too.
    wait_for(lambda: "approve" in view._rows, what="the signal rows")
    wait_for(lambda: engine.waiting_signals(handle.id) == ["approve"], what="the wait")
    return view


def test_a_dict_example_is_a_form_and_its_empty_field_sends_nothing(engine, coalescer):
    h = engine.start(sf_offer)
    view = _view(engine, coalescer, h)
    approve = view._rows["approve"]
    assert approve.payload is None  # no JSON box: a form
    assert set(approve.fields) == {"ok", "by"}
    assert approve.fields["ok"].value is True and approve.fields["by"].value == "ann"
    approve.fields["by"].value = "  "
    approve.button.click()
    assert "by: expects text, the field is empty; nothing was sent" in approve.error.value
    assert engine.waiting_signals(h.id) == ["approve"]

    approve.fields["by"].value = "bob"
    approve.fields["ok"].value = False
    approve.button.click()
    wait_for(lambda: engine.waiting_signals(h.id) == ["withdraw"], what="the next wait")

    withdraw = view._rows["withdraw"]
    assert withdraw.fields == {} and withdraw.payload is None  # a bare button
    assert "carries nothing" in withdraw.button.tooltip
    withdraw.button.click()
    wait_for(lambda: engine.waiting_signals(h.id) == ["refund"], what="the refund wait")

    refund = view._rows["refund"]
    refund.fields["amount"].value = "ten"
    refund.fields["reason"].value = "late"
    refund.button.click()
    assert "amount: expects a number, not &#x27;ten&#x27;" in refund.error.value
    refund.fields["amount"].value = "10.5"
    refund.button.click()
    wait_for(lambda: engine.waiting_signals(h.id) == ["n"], what="the count wait")

    count = view._rows["n"]
    count.fields[None].value = "3"
    count.button.click()
    assert h.result(timeout=5) == [
        {"ok": False, "by": "bob"},
        None,
        {"amount": 10.5, "reason": "late"},
        3,
    ]
    view.close()


def test_declarations_are_checked_and_read_from_a_cell_header():
    names, payloads = declared_signals({"a": str, "b": None, "c": 2.5})
    assert names == ("a", "b", "c")
    assert payloads["a"].kind == "str" and not payloads["b"].expects
    assert payloads["c"].kind == "float" and payloads["c"].default == 2.5
    assert declared_signals("a, b") == (("a", "b"), {})
    with pytest.raises(DefinitionError, match="cannot tell what it carries"):
        declared_signals({"a": object()})
    assert parse_kind("none") is None and parse_kind("int") is int
    assert parse_kind('{"ok": true}') == {"ok": True}
    with pytest.raises(DefinitionError, match="write none, str"):
        parse_kind("{oops")
