"""Record types: a copy of an execution record is equal and shares no list."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from nbconductor.storage.records import ExecutionRecord, Status


def test_an_execution_record_copy_has_every_field_and_tags_of_its_own():
    at = datetime(2026, 1, 1, tzinfo=UTC)
    values = {}
    for i, f in enumerate(dataclasses.fields(ExecutionRecord)):
        if f.name == "status":
            values[f.name] = Status.FAILED
        elif f.name == "tags":
            values[f.name] = ["a", "b"]
        elif f.type in ("datetime", "datetime | None"):
            values[f.name] = at + timedelta(seconds=i)
        else:
            values[f.name] = f"value {i}"  # every field set to something of its own
    record = ExecutionRecord(**values)
    copy = record.copy()
    assert copy == record and copy is not record
    assert copy.tags is not record.tags
    copy.tags.append("c")
    assert record.tags == ["a", "b"]
