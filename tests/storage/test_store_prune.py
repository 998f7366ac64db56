"""Pruning, the Store contract: which closed executions go (whole families, never one
with an open member), what a dry run does, and what is reported. Runs on every store."""

from __future__ import annotations

from datetime import timedelta

import pytest
from storetools import T0, event, execution

from nbconductor.storage.records import Batch, Status

CUTOFF = T0 + timedelta(days=30)


def closed(id: str, *, days: float = 1, status: Status = Status.COMPLETED, **changes):
    """An execution that closed ``days`` after T0 (before CUTOFF when days < 30)."""
    at = T0 + timedelta(days=days)
    return execution(id, status=status, closed_at=at, updated_at=at, **changes)


def commit(store, *records, events_each: int = 3):
    events = [event(r.id, seq) for r in records for seq in range(1, events_each + 1)]
    store.commit(Batch(new_executions=list(records), events=events))


def ids(store) -> set[str]:
    return {r.id for r in store.list_executions()}


def test_sp_prune_deletes_old_closed_executions_with_their_events(store):
    commit(store, closed("old-1"), closed("old-2", status=Status.FAILED), closed("new", days=40))
    commit(store, execution("open"))
    report = store.prune(CUTOFF)
    assert (report.executions, report.events, report.kept) == (2, 6, 0)
    assert sorted(report.ids) == ["old-1", "old-2"]
    assert not report.dry_run and report.closed_before == CUTOFF
    assert ids(store) == {"new", "open"}
    assert store.load_history("old-1") == [] and len(store.load_history("new")) == 3
    assert store.prune(CUTOFF).executions == 0  # nothing left to do


def test_sp_dry_run_counts_and_changes_nothing(store):
    commit(store, closed("old-1"), closed("old-2"), execution("open"))
    report = store.prune(CUTOFF, dry_run=True)
    assert (report.dry_run, report.executions, report.events) == (True, 2, 6)
    assert ids(store) == {"old-1", "old-2", "open"}
    assert len(store.load_history("old-1")) == 3


def test_sp_prune_never_touches_an_open_execution(store):
    # An open execution whose closed_at is somehow set (it cannot be, but the rule must
    # not rest on that) is still open.
    commit(store, execution("open", closed_at=T0), closed("old"))
    assert store.prune(T0 + timedelta(days=3650)).ids == ["old"]
    assert ids(store) == {"open"}


def test_sp_a_closed_child_of_an_open_parent_stays(store):
    commit(store, execution("parent"), closed("parent/child", parent_id="parent"))
    report = store.prune(CUTOFF)
    assert (report.executions, report.kept) == (0, 1)
    assert ids(store) == {"parent", "parent/child"}


def test_sp_a_closed_parent_of_an_open_child_stays(store):
    commit(store, closed("parent"), execution("parent/abandoned", parent_id="parent"))
    assert store.prune(CUTOFF).executions == 0
    assert ids(store) == {"parent", "parent/abandoned"}


def test_sp_a_family_goes_whole_once_every_member_is_old(store):
    commit(
        store,
        closed("root", days=2),
        closed("root/a", days=1, parent_id="root"),
        closed("root/a/b", days=1, parent_id="root/a"),
        closed("other", days=1),
    )
    commit(
        store, closed("late-root", days=2), closed("late-root/c", days=40, parent_id="late-root")
    )
    report = store.prune(CUTOFF)
    assert sorted(report.ids) == ["other", "root", "root/a", "root/a/b"]
    assert report.kept == 1  # late-root: its child closed after the cutoff
    assert ids(store) == {"late-root", "late-root/c"}


def test_sp_an_open_grandchild_keeps_the_whole_tree(store):
    commit(
        store,
        closed("g"),
        closed("g/mid", parent_id="g"),
        execution("g/mid/leaf", parent_id="g/mid"),
        closed("g/other", parent_id="g"),
    )
    report = store.prune(CUTOFF)
    assert (report.executions, report.kept) == (0, 3)


def test_sp_a_continue_as_new_chain_stays_while_a_later_run_is_open(store):
    chain = [
        closed("loop", status=Status.CONTINUED_AS_NEW),
        closed("loop#2", status=Status.CONTINUED_AS_NEW, origin_id="loop"),
    ]
    commit(store, *chain, execution("loop#3", origin_id="loop#2"))
    assert store.prune(CUTOFF).executions == 0
    assert ids(store) == {"loop", "loop#2", "loop#3"}


def test_sp_a_finished_chain_goes_when_its_last_run_is_old(store):
    commit(
        store,
        closed("loop", days=1, status=Status.CONTINUED_AS_NEW),
        closed("loop#2", days=2, origin_id="loop"),
        closed("recent", days=1, status=Status.CONTINUED_AS_NEW),
        closed("recent#2", days=45, origin_id="recent"),
    )
    assert sorted(store.prune(CUTOFF).ids) == ["loop", "loop#2"]
    assert ids(store) == {"recent", "recent#2"}


def test_sp_a_fork_is_not_family(store):
    # A fork copied the history it needs: its origin may go while it runs.
    commit(store, closed("origin"), execution("origin-fork-1", origin_id="origin"))
    assert store.prune(CUTOFF).ids == ["origin"]
    assert ids(store) == {"origin-fork-1"}


def test_sp_limit_takes_whole_families_oldest_first(store):
    commit(
        store,
        closed("a", days=1),
        closed("b", days=2),
        closed("b/1", days=2, parent_id="b"),
        closed("c", days=3),
    )
    assert store.prune(CUTOFF, limit=2).ids == ["a"]  # b's family of two would exceed it
    assert store.prune(CUTOFF, limit=1).ids == ["b", "b/1"]  # at least one family
    assert store.prune(CUTOFF, limit=5).ids == ["c"]


def test_sp_naive_cutoff_is_utc(store):
    commit(store, closed("old"))
    assert store.prune(CUTOFF.replace(tzinfo=None)).ids == ["old"]


@pytest.mark.parametrize("batch", [1, 2, 1000])
def test_sp_batches_do_not_change_the_outcome(store, batch):
    commit(store, *[closed(f"e{i}") for i in range(5)], execution("open"))
    report = store.prune(CUTOFF, batch=batch)
    assert (report.executions, report.events) == (5, 15)
    assert ids(store) == {"open"}
