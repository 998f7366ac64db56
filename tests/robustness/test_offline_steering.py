"""Signals and cancels sent while no engine holds the file: any number, in order."""

from __future__ import annotations

import asyncio

import pytest

import nbconductor as nc
from nbconductor.engine import offline
from nbconductor.engine.engine import Engine
from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
from nbconductor.testing import wait_for

SEEN: list[str] = []


@nc.task
def echo_item(value: str) -> str:
    SEEN.append(value)
    return value


@nc.workflow
async def two_items() -> list:
    got = []
    for _ in range(3):
        got.append(await echo_item(await nc.signal("item")))
    return got


def _offline(db_path, fn, *args):
    store = DuckDBStore(db_path)
    try:
        fn(store, *args)
    finally:
        store.close()


@pytest.mark.parametrize("restarts", [False, True])
def test_several_offline_signals_are_delivered_in_order(db_path, restarts):
    eng = Engine(db_path)
    h = eng.start(two_items, id="items")
    wait_for(lambda: h.waiting_for == ["item"], what="the signal wait")
    eng.stop(grace=0)
    _offline(db_path, offline.signal, "items", "item", "a")
    _offline(db_path, offline.signal, "items", "item", "b")
    if restarts:
        # A restart after the first delivery and a third offline signal: the history
        # now has offline events before and after recorded commands.
        eng = Engine(db_path)
        wait_for(lambda: eng.get("items").waiting_for == ["item"], what="the third wait")
        eng.stop(grace=0)
    _offline(db_path, offline.signal, "items", "item", "c")
    eng = Engine(db_path)
    try:
        assert eng.get("items").result(timeout=10) == ["a", "b", "c"]
        assert not eng.get("items").condition
    finally:
        eng.stop(grace=0)
    # The history replays from scratch after a further restart as well.
    eng = Engine(db_path)
    try:
        assert eng.get("items").result(timeout=10) == ["a", "b", "c"]
    finally:
        eng.stop(grace=0)


@nc.workflow
async def cancellable() -> str:
    try:
        await nc.signal("never")
    except asyncio.CancelledError:
        await echo_item(await nc.signal("after-cancel"))
        return "compensated"
    return "not cancelled"


def test_offline_cancel_then_signal_replays(db_path):
    eng = Engine(db_path)
    h = eng.start(cancellable, id="c1")
    wait_for(lambda: h.waiting_for == ["never"], what="the signal wait")
    eng.stop(grace=0)
    _offline(db_path, offline.cancel, "c1")
    _offline(db_path, offline.signal, "c1", "after-cancel", "x")
    eng = Engine(db_path)
    try:
        assert eng.get("c1").result(timeout=10) == "compensated"
    finally:
        eng.stop(grace=0)
