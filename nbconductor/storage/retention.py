"""Which closed executions may be deleted: the one rule both stores apply when pruning.

An execution is deleted together with its *family* — its parent and children
(recursively) and the runs of its continue-as-new chain — and only when every member
of the family is closed, and closed before the cutoff. So pruning never deletes:

- an open execution;
- a closed child while its parent runs (the parent's code may still read it, and a
  ``Handle`` of the child must keep answering until the tree is done);
- a closed parent while a child it abandoned runs on;
- a closed run of a continue-as-new chain while a later run is open or recent
  (``Handle.result()`` follows the chain from its first run).

A fork is not family: it copied the history it needs, and ``origin_id`` is only a
pointer back. Families are taken whole, oldest first (by their last close), so a
``limit`` never splits one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from nbconductor.storage.records import Status

__all__ = ("FamilyRow", "prunable")

#: What the rule reads of every execution: id, status, closed_at, parent_id, origin_id.
FamilyRow = tuple[str, Status, "datetime | None", "str | None", "str | None"]


def prunable(
    rows: Iterable[FamilyRow], closed_before: datetime, limit: int | None = None
) -> tuple[list[str], int]:
    """The ids to delete, oldest family first, and how many executions closed before
    the cutoff are kept because of their family.

    Args:
        rows: the executions closed before the cutoff and every execution linked to
            one of them (parent, child, previous or next run), or simply all of them:
            a family with a member that is open or closed later reaches it by a link.
        closed_before: an aware datetime; members must have closed strictly before it.
        limit: stop after this many executions (whole families only; at least one
            family is taken when any is due, even one larger than ``limit``).
    """
    rows = list(rows)
    statuses = {row[0]: row[1] for row in rows}
    parent = {row[0]: row[0] for row in rows}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def join(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb

    for id_, _status, _closed, parent_id, origin_id in rows:
        if parent_id is not None and parent_id in parent:
            join(id_, parent_id)
        if origin_id is not None and statuses.get(origin_id) is Status.CONTINUED_AS_NEW:
            join(id_, origin_id)

    due: dict[str, bool] = {}
    last_close: dict[str, datetime] = {}
    members: dict[str, list[str]] = {}
    old_closed = 0
    for id_, status, closed_at, _parent, _origin in rows:
        root = find(id_)
        members.setdefault(root, []).append(id_)
        old = status is not Status.RUNNING and closed_at is not None and closed_at < closed_before
        old_closed += old
        due[root] = due.get(root, True) and old
        if closed_at is not None and (root not in last_close or closed_at > last_close[root]):
            last_close[root] = closed_at
    families = sorted((root for root, ok in due.items() if ok), key=lambda r: (last_close[r], r))
    out: list[str] = []
    for root in families:
        if limit is not None and out and len(out) + len(members[root]) > limit:
            break
        out.extend(sorted(members[root]))
    every_due = sum(len(members[root]) for root in families)
    return out, old_closed - every_due
