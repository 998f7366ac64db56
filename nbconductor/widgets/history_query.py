"""The history table's request: its filters, sort and page, validated.

The browser sends changes as plain JSON (:meth:`HistoryQuery.merged` checks them); the
query turns into the store's :class:`~nbconductor.storage.records.ExecutionFilter`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from nbconductor.storage.records import SORT_KEYS, ExecutionFilter, Status
from nbconductor.widgets.markup import format_time

__all__ = ("PAGE_SIZES", "RANGES", "SORTS", "HistoryQuery")

#: Columns the table sorts by.
SORTS = SORT_KEYS
PAGE_SIZES = (25, 50, 100, 200)
#: Time range presets: how far back from now (None: no bound; "custom": since/until).
RANGES = {"any": None, "1h": 3600.0, "24h": 86400.0, "7d": 7 * 86400.0, "custom": None}
_STATUSES = tuple(s.value for s in Status)


@dataclass(frozen=True)
class HistoryQuery:
    """The table's filters, sort and page. Build changes with :meth:`merged`."""

    status: tuple[str, ...] = ()
    workflow: str | None = None
    search: str = ""
    range: str = "any"
    since: datetime | None = None  # with range="custom"
    until: datetime | None = None
    sort: str = "started"
    descending: bool = True
    page: int = 0
    page_size: int = 50

    def merged(self, changes: Mapping[str, Any]) -> HistoryQuery:
        """A copy with ``changes`` applied, validated (the browser sends these).

        ``toggle_sort=COLUMN`` sorts by that column, or flips the order when it is the
        current one; ``toggle_status=STATUS`` adds or removes one status. Any change
        but ``page`` goes back to the first page.

        Raises:
            ValueError: an unknown key or value, naming it.
        """
        values: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "toggle_sort":
                _check(value in SORTS, key, value, SORTS)
                same = value == self.sort
                values["sort"] = value
                values["descending"] = not self.descending if same else value != "workflow"
            elif key == "toggle_status":
                _check(value in _STATUSES, key, value, _STATUSES)
                current = list(values.get("status", self.status))
                values["status"] = tuple(
                    [s for s in current if s != value] if value in current else [*current, value]
                )
            elif key == "status":
                items = [value] if isinstance(value, (str, Status)) else list(value or ())
                names = tuple(_status_value(s) for s in items)
                values["status"] = tuple(s for s in _STATUSES if s in names)
            elif key in ("workflow", "search"):
                text = str(value or "").strip()
                values[key] = (text or None) if key == "workflow" else text
            elif key == "range":
                _check(value in RANGES, key, value, RANGES)
                values[key] = value
            elif key in ("since", "until"):
                values[key] = _as_time(value, key)
                values["range"] = "custom"
            elif key == "sort":
                _check(value in SORTS, key, value, SORTS)
                values[key] = value
            elif key == "descending":
                values[key] = bool(value)
            elif key == "page":
                values[key] = max(0, int(value))
            elif key == "page_size":
                _check(int(value) in PAGE_SIZES, key, value, PAGE_SIZES)
                values[key] = int(value)
            else:
                raise ValueError(
                    f"the history table has no filter {key!r}; use status, workflow, search, "
                    "range, since, until, sort, descending, page or page_size"
                )
        if "page" not in values and values:
            values["page"] = 0
        return replace(self, **values)

    def filter(self, now: datetime) -> ExecutionFilter:
        """The store filter, in the table's order (without limit and offset)."""
        since, until = self.since, self.until
        if self.range != "custom":
            back = RANGES.get(self.range)
            since = now - timedelta(seconds=back) if back else None
            until = None
        return ExecutionFilter(
            status=[Status(s) for s in self.status] or None,
            workflow=self.workflow,
            since=since,
            until=until,
            search=self.search or None,
            newest_first=self.descending,
            sort=self.sort,
            now=now,
        )

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for the filter bar (the ``query`` trait)."""
        return {
            "status": list(self.status),
            "workflow": self.workflow or "",
            "search": self.search,
            "range": self.range,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "sort": self.sort,
            "descending": self.descending,
            "page": self.page,
            "page_size": self.page_size,
        }

    def describe(self) -> str:
        """The filters in words (empty when there are none)."""
        parts = []
        if self.status:
            parts.append("status " + "/".join(self.status))
        if self.workflow:
            parts.append(f"workflow {self.workflow}")
        if self.search:
            parts.append(f"matching {self.search!r}")
        if self.range not in ("any", "custom"):
            parts.append(f"in the last {self.range}")
        elif self.range == "custom" and (self.since or self.until):
            parts.append(
                f"started {format_time(self.since) or '…'} to {format_time(self.until) or '…'}"
            )
        return ", ".join(parts)


def _check(ok: bool, key: str, value: Any, allowed) -> None:
    if not ok:
        raise ValueError(f"{key}={value!r} is not valid; use one of {', '.join(map(str, allowed))}")


def _status_value(value: Any) -> str:
    text = str(getattr(value, "value", value)).lower()
    text = {"timedout": "timed_out", "continuedasnew": "continued_as_new"}.get(text, text)
    _check(text in _STATUSES, "status", value, _STATUSES)
    return text


def _as_time(value: Any, key: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise ValueError(f"{key}={value!r} is not a time; give a datetime or ISO 8601 text")
    return value if value.tzinfo else value.replace(tzinfo=UTC)
