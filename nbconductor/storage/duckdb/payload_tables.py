"""Stored values in the history file: one native table per stored frame, blobs for the rest.

- ``payloads`` (schema version 4) lists every stored value: its content ``hash`` (the
  key), ``kind``, ``rows``, ``bytes``, one-line ``schema``, ``meta`` (JSON: the Arrow
  schema to give back, numpy dtype and shape) and, for values that are not kept as a
  table, the ``data`` blob.
- ``payload_<hash>`` holds a frame or Arrow table as a DuckDB table: compressed,
  columnar, queryable where it lies.
- ``payload_refs`` is a view: which event references which stored value
  (``execution_id, seq, event, name, command, hash``), found in the events' JSON.

Writes are independent of the engine's event batches: a value is stored, in its own
transaction on a cursor of the calling thread, *before* the event that references it
is appended, so a crash leaves at worst an unreferenced value (garbage that
:func:`delete_unreferenced` removes), never an event pointing at nothing. Two threads
storing the same value race harmlessly: whoever loses the write-write conflict finds
the value there and counts that as success.

User queries may call two pseudo table functions, rewritten here before DuckDB sees
them: ``result('exec-1', 'make')`` (the stored table that task ``make`` of execution
``exec-1`` returned, its latest completion; ``result('exec-1')`` is the execution's own
result) and ``payload('<hash>')``.

This module does not import duckdb: the store hands it cursors.
"""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from nbconductor.errors import PayloadError, StoreError
from nbconductor.storage.values import StoredValue

__all__ = (
    "MIGRATION",
    "delete_unreferenced",
    "exists",
    "expand_user_functions",
    "put",
    "read",
)

GRACE_SECONDS = 600.0
"""A value stored (or found stored again) less than this long ago is never collected:
the event that will reference it may not be appended yet (a task stores its result
before its TaskCompleted commits), and pruning runs while the engine does."""

# A reference as the codec writes it (key order fixed by values.StoredValue.ref).
REF_PATTERN = r'"__nbc__":"ref","kind":"[a-z]+","hash":"([0-9a-f]{32})"'
_HASH = re.compile(r"^[0-9a-f]{32}$")


def _migrate(con: Any) -> None:
    """Version 4: stored values (``payloads``, ``payload_<hash>`` tables) and
    ``payload_refs``."""
    con.execute(
        "CREATE TABLE payloads (hash VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, "
        "rows BIGINT, bytes BIGINT NOT NULL, schema VARCHAR NOT NULL, meta VARCHAR NOT NULL, "
        "stored_at TIMESTAMP NOT NULL, data BLOB)"
    )
    con.execute(
        "CREATE VIEW payload_refs AS SELECT execution_id, seq, kind AS event, name, command, "
        f"unnest(regexp_extract_all(data, '{REF_PATTERN}', 1)) AS hash FROM events "
        'WHERE contains(data, \'"__nbc__":"ref"\')'
    )
    con.execute(
        "COMMENT ON TABLE payloads IS 'nbconductor stored values: frames as tables "
        "payload_<hash>, the rest in data; see payload_refs'"
    )


MIGRATION = _migrate


def table_name(digest: str) -> str:
    if not _HASH.match(digest):
        raise PayloadError(f"{digest!r} is not the hash of a stored value")
    return f"payload_{digest}"


def exists(cursor: Any, digest: str) -> bool:
    return bool(cursor.execute("SELECT 1 FROM payloads WHERE hash = ?", [digest]).fetchall())


def put(cursor: Any, stored: StoredValue, conflict: type[BaseException]) -> bool:
    """Store ``stored`` unless it is there already; True when this call wrote it.

    Runs in its own transaction on ``cursor``. ``conflict`` is the error class DuckDB
    raises for a concurrent write of the same value; after one, the value is looked
    for again.
    """
    if exists(cursor, stored.hash):
        _touch(cursor, stored.hash)
        return False
    name = table_name(stored.hash)
    cursor.begin()
    try:
        data = None
        if stored.table is not None:
            arrow_table = stored.table  # noqa: F841 - read by DuckDB's replacement scan
            cursor.execute(f"CREATE TABLE {name} AS SELECT * FROM arrow_table")
        else:
            data = stored.blob
        cursor.execute(
            "INSERT INTO payloads VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                stored.hash,
                stored.kind,
                stored.rows,
                stored.nbytes,
                stored.schema,
                json.dumps(stored.meta, separators=(",", ":")),
                _now(),
                None if data is None else _as_bytes(data),
            ],
        )
        cursor.commit()
    except conflict:
        _rollback(cursor)
        if exists(cursor, stored.hash):
            return False  # another thread stored the same value first
        raise
    except BaseException:
        _rollback(cursor)
        raise
    return True


def _touch(cursor: Any, digest: str) -> None:
    # Found stored: about to be referenced again, so keep it out of a collection that
    # runs meanwhile. Written at most once per half grace period per value.
    now = _now()
    cursor.execute(
        "UPDATE payloads SET stored_at = ? WHERE hash = ? AND stored_at < ?",
        [now, digest, now - timedelta(seconds=GRACE_SECONDS / 2)],
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _as_bytes(data: Any) -> Any:
    # DuckDB binds bytes (not memoryviews or Arrow buffers) as BLOB parameters.
    return data if isinstance(data, bytes) else memoryview(data).cast("B").tobytes()


def _rollback(cursor: Any) -> None:
    with contextlib.suppress(Exception):  # DuckDB may have aborted the transaction already
        cursor.rollback()


def read(cursor: Any, digest: str) -> StoredValue:
    """The stored value ``digest`` with its data (an Arrow table or the blob).

    Raises:
        PayloadError: no value with this hash is stored (pruned, or another file).
    """
    rows = cursor.execute(
        "SELECT kind, rows, bytes, schema, meta, data FROM payloads WHERE hash = ?", [digest]
    ).fetchall()
    if not rows:
        raise PayloadError(
            f"the stored value {digest} is not in this history file (was it pruned?)"
        )
    kind, count, size, schema, meta_text, data = rows[0]
    meta = json.loads(meta_text)
    stored = StoredValue(kind, digest, count, size, schema, meta, blob=data)
    if data is None:
        stored.table = cursor.sql(f"SELECT * FROM {table_name(digest)}").to_arrow_table()
    return stored


def preview(cursor: Any, digest: str, rows: int) -> tuple[list[str], list[tuple]] | None:
    """The first ``rows`` rows of a value stored as a table (None for the others)."""
    kept = cursor.execute("SELECT data IS NULL FROM payloads WHERE hash = ?", [digest]).fetchall()
    if not kept or not kept[0][0]:
        return None
    result = cursor.execute(f"SELECT * FROM {table_name(digest)} LIMIT ?", [rows])
    columns = [d[0] for d in result.description or ()]
    return columns, result.fetchall()


# Every hash referenced by history, except by the executions in $1 (those a dry-run
# prune would delete; an empty list when nothing is being deleted).
_REFERENCED = f"""
SELECT DISTINCT unnest(regexp_extract_all(text, '{REF_PATTERN}', 1)) AS hash FROM (
    SELECT data AS text FROM events WHERE contains(data, '"__nbc__":"ref"')
        AND execution_id NOT IN (SELECT unnest($1::VARCHAR[]))
    UNION ALL SELECT input FROM executions WHERE contains(input, '"__nbc__":"ref"')
        AND id NOT IN (SELECT unnest($1::VARCHAR[]))
    UNION ALL SELECT result FROM executions WHERE contains(result, '"__nbc__":"ref"')
        AND id NOT IN (SELECT unnest($1::VARCHAR[]))
    UNION ALL SELECT error FROM executions WHERE contains(error, '"__nbc__":"ref"')
        AND id NOT IN (SELECT unnest($1::VARCHAR[]))
    UNION ALL SELECT spec FROM schedules WHERE contains(spec, '"__nbc__":"ref"')
    UNION ALL SELECT state FROM schedules WHERE contains(state, '"__nbc__":"ref"')
)
"""


def delete_unreferenced(
    cursor: Any,
    *,
    dry_run: bool = False,
    older_than: float = GRACE_SECONDS,
    without: list[str] | None = None,
) -> dict[str, int]:
    """Delete every stored value that no event, execution or schedule references and
    that was stored (or found stored again) more than ``older_than`` seconds ago.

    Run it after deleting events (prune). The grace period keeps a value whose event
    is not appended yet (see :data:`GRACE_SECONDS`). ``without`` (with ``dry_run``):
    count as if these executions were deleted already, as a dry-run prune reports.

    Returns:
        ``{"payloads": n, "bytes": b}``: how many values were (or would be) deleted and
        how many bytes of data they held.
    """
    orphans = cursor.execute(
        f"SELECT hash, bytes, data IS NULL FROM payloads WHERE stored_at < $2 "
        f"AND hash NOT IN ({_REFERENCED})",
        [without or [], _now() - timedelta(seconds=older_than)],
    ).fetchall()
    if without and not dry_run:
        raise ValueError("without= counts what a prune would free: use it with dry_run")
    if not dry_run and orphans:
        cursor.begin()
        try:
            for digest, _, is_table in orphans:
                if is_table:
                    cursor.execute(f"DROP TABLE IF EXISTS {table_name(digest)}")
            cursor.execute(
                "DELETE FROM payloads WHERE hash IN (SELECT unnest(?::VARCHAR[]))",
                [[digest for digest, _, _ in orphans]],
            )
            cursor.commit()
        except BaseException:
            _rollback(cursor)
            raise
    return {"payloads": len(orphans), "bytes": int(sum(size for _, size, _ in orphans))}


# --- result() and payload() in user queries ----------------------------------------------

_USER_FUNCTIONS = ("result", "payload")


def expand_user_functions(cursor: Any, query: str) -> str:
    """``query`` with ``result(...)`` and ``payload(...)`` calls replaced by the stored
    tables they name (the query unchanged when it calls neither).

    Raises:
        StoreError: a call's arguments are not string constants, or name nothing stored
            as a table.
    """
    lowered = query.lower()
    if not any(f"{name}(" in lowered.replace(" ", "") for name in _USER_FUNCTIONS):
        return query
    ((text,),) = cursor.execute("SELECT json_serialize_sql(?)", [query]).fetchall()
    tree = json.loads(text)
    if tree.get("error"):
        return query  # the user-query check reports it
    if not _replace(cursor, tree):
        return query
    ((expanded,),) = cursor.execute(
        "SELECT json_deserialize_sql(?::JSON)", [json.dumps(tree)]
    ).fetchall()
    return expanded


def _replace(cursor: Any, node: Any) -> bool:
    """Swap each call of a user function in the parsed query for its table, in place."""
    if isinstance(node, dict):
        slots = list(node.items())
    elif isinstance(node, list):
        slots = list(enumerate(node))
    else:
        return False
    changed = False
    for key, value in slots:
        if (
            isinstance(value, dict)
            and value.get("type") == "TABLE_FUNCTION"
            and value["function"].get("function_name", "").lower() in _USER_FUNCTIONS
        ):
            node[key] = _base_table(cursor, value)
            changed = True
        else:
            changed = _replace(cursor, value) or changed
    return changed


def _base_table(cursor: Any, node: dict) -> dict:
    function = node["function"]
    name = function["function_name"].lower()
    args = []
    for argument in function.get("arguments") or function.get("children") or []:
        expression = argument.get("expression", argument)
        literal = expression.get("literal") or {}
        if expression.get("class") != "CONSTANT" or literal.get("kind") not in ("STRING",):
            raise StoreError(
                f"{name}() takes string constants, e.g. {name}('exec-1', 'make') or "
                f"payload('<hash>'); got {json.dumps(expression)[:80]}"
            )
        args.append(literal["text"])
    digest = _payload_hash(args) if name == "payload" else _result_hash(cursor, args)
    table = table_name(digest)
    kept = cursor.execute("SELECT data IS NULL FROM payloads WHERE hash = ?", [digest]).fetchall()
    if not kept or not kept[0][0]:
        what = f"{name}({', '.join(repr(a) for a in args)})"
        raise StoreError(
            f"{what} is not stored as a table (only frames and Arrow tables are; see "
            "SELECT * FROM payloads)"
            if kept
            else f"{what} names no stored value"
        )
    return {
        "type": "BASE_TABLE",
        "alias": node.get("alias") or "",
        "sample": node.get("sample"),
        "query_location": node.get("query_location", 0),
        "query_location_length": node.get("query_location_length", 0),
        "schema_name": "",
        "table_name": table,
        "column_name_alias": node.get("column_name_alias", []),
        "catalog_name": "",
        "at_clause": None,
        "qualified_name": {"path": [table]},
    }


def _payload_hash(args: list[str]) -> str:
    if len(args) != 1 or not _HASH.match(args[0]):
        raise StoreError("payload() takes one stored value's hash: payload('<32 hex digits>')")
    return args[0]


def _result_hash(cursor: Any, args: list[str]) -> str:
    if len(args) == 1:
        rows = cursor.execute(
            "SELECT result->>'$.hash', result->>'$.__nbc__' FROM executions WHERE id = ?", args
        ).fetchall()
        what = f"execution {args[0]!r}"
    elif len(args) == 2:
        # The execution's events first, materialized: DuckDB scans the index only for a
        # filter on execution_id alone (see LOAD_HISTORY in sql.py).
        rows = cursor.execute(
            "WITH history AS MATERIALIZED (SELECT seq, kind, name, data FROM events "
            "WHERE execution_id = $1) "
            "SELECT data->>'$.result.hash', data->>'$.result.__nbc__' FROM history "
            "WHERE kind = 'TaskCompleted' AND name = $2 ORDER BY seq DESC LIMIT 1",
            args,
        ).fetchall()
        what = f"task {args[1]!r} of execution {args[0]!r}"
    else:
        raise StoreError(
            "result() takes an execution id and a task name, result('exec-1', 'make'), "
            "or an execution id alone for the execution's result"
        )
    if not rows:
        raise StoreError(f"result(): {what} has no result (yet)")
    digest, tag = rows[0]
    if tag != "ref" or not digest:
        raise StoreError(f"result(): the result of {what} is not a stored table")
    return digest
