"""DuckDB statements run with a short GIL switch interval, restored afterwards: a busy
thread no longer makes every commit wait a dozen 5 ms intervals."""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime

import pytest

from nbconductor.storage.duckdb import gil_handoff
from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
from nbconductor.storage.records import Batch, EventKind, EventRecord

SHORT = gil_handoff.SHORT_INTERVAL


@pytest.fixture
def user_interval():
    """The user's own interval (not the default), put back after the test."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.002)
    yield 0.002
    sys.setswitchinterval(before)


class ObservedStore(DuckDBStore):
    """A real store that notes the switch interval while a commit writes."""

    seen: list[float]

    def _run(self, *step):
        self.seen.append(sys.getswitchinterval())
        return super()._run(*step)


def test_a_commit_runs_with_the_short_interval_and_restores_the_users(tmp_path, user_interval):
    store = ObservedStore(tmp_path / "h.duckdb")
    store.seen = []
    now = datetime.now(UTC)
    store.commit(Batch(events=[EventRecord("e", 1, EventKind.TASK_COMPLETED, now)]))
    assert store.seen == [pytest.approx(SHORT, abs=1e-6)]
    assert sys.getswitchinterval() == pytest.approx(user_interval, abs=1e-6)
    store.close()


def test_a_read_runs_with_the_short_interval_and_restores_the_users(tmp_path, user_interval):
    store = DuckDBStore(tmp_path / "h.duckdb")
    # A Python function called by DuckDB in the middle of the statement.
    store._root.create_function("probe", sys.getswitchinterval, [], "DOUBLE")
    ((during,),) = store._query("SELECT probe()")
    assert during == pytest.approx(SHORT, abs=1e-6)
    assert sys.getswitchinterval() == pytest.approx(user_interval, abs=1e-6)
    store.close()


def test_the_interval_comes_back_when_the_last_of_overlapping_statements_ends(user_interval):
    first_in, release_first = threading.Event(), threading.Event()

    def first() -> None:
        with gil_handoff.short_switch_interval():
            first_in.set()
            release_first.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    assert first_in.wait(10)
    with gil_handoff.short_switch_interval():
        pass
    assert sys.getswitchinterval() == pytest.approx(SHORT, abs=1e-6)  # the first still runs
    release_first.set()
    thread.join(10)
    assert sys.getswitchinterval() == pytest.approx(user_interval, abs=1e-6)


def test_an_interval_set_during_a_statement_is_left_as_set(user_interval):
    with gil_handoff.short_switch_interval():
        sys.setswitchinterval(0.01)  # someone else's choice, made meanwhile
    assert sys.getswitchinterval() == pytest.approx(0.01, abs=1e-6)


def test_an_interval_already_shorter_is_not_touched():
    before = sys.getswitchinterval()
    sys.setswitchinterval(SHORT / 2)
    try:
        with gil_handoff.short_switch_interval():
            assert sys.getswitchinterval() == pytest.approx(SHORT / 2, abs=1e-7)
        assert sys.getswitchinterval() == pytest.approx(SHORT / 2, abs=1e-7)
    finally:
        sys.setswitchinterval(before)
