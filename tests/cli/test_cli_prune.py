"""``nbconductor prune`` on a file no engine holds, and through a running engine's socket."""

from __future__ import annotations

from clitools import wait_waiting

FUTURE = "2100-01-01"  # every closed execution closed before it


def test_sp_prune_offline_deletes_closed_executions_only(cli, db):
    counted = cli("--db", db, "prune", "--closed-before", FUTURE, "--dry-run", "--json")
    assert counted.code == 0, counted.err
    assert (counted.json["dry_run"], counted.json["executions"], counted.json["ids"]) == (
        True,
        1,
        ["d-1"],
    )
    assert cli("--db", db, "show", "d-1").code == 0  # a dry run changes nothing

    pruned = cli("--db", db, "prune", "--closed-before", FUTURE)
    assert pruned.code == 0, pruned.err
    assert pruned.out.startswith("pruned 1 execution (")
    assert "closed before 2100-01-01" in pruned.out and "history file:" in pruned.out
    assert cli("--db", db, "show", "d-1").code == 1
    open_ids = sorted(x["id"] for x in cli("--db", db, "list", "--json").json)
    assert open_ids == ["a-1", "a-2", "n-1"]


def test_sp_prune_by_age_keeps_recent_executions(cli, db):
    result = cli("--db", db, "prune", "--closed-before", "30d", "--json")
    assert result.code == 0, result.err
    assert result.json["executions"] == 0
    assert cli("--db", db, "show", "d-1").code == 0


def test_sp_prune_bad_input_is_a_usage_error(cli, db):
    bad = cli("--db", db, "prune", "--closed-before", "soon")
    assert bad.code == 2 and "--closed-before 'soon'" in bad.err
    missing = cli("--db", db, "prune")
    assert missing.code == 2 and "--closed-before" in missing.err
    assert cli("--db", db, "prune", "--closed-before", "1d", "--limit", "0").code == 2


def test_sp_prune_through_a_running_engine(cli, db, start_host):
    start_host(db)
    wait_waiting(db, "a-1", "approve")
    result = cli("--db", db, "prune", "--closed-before", FUTURE, "--json")
    assert result.code == 0, result.err
    assert (result.json["dry_run"], result.json["ids"]) == (False, ["d-1"])
    assert result.json["bytes_before"] > 0 and result.json["bytes_after"] > 0
    assert cli("--db", db, "show", "d-1").code == 1
    # The engine carries on: the open executions still take signals.
    assert cli("--db", db, "signal", "a-1", "approve", "true").code == 0
