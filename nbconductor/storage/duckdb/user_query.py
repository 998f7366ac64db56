"""What a user query (``%conductor sql``, ``nbconductor sql``, the socket) may read.

The history tables only: a query is a user's input, and DuckDB would otherwise read any
file the user can read (``read_text('/etc/...')``, ``FROM '/path.csv'``), other
databases, or URLs. This module does not import duckdb: the store hands it a cursor.
"""

from __future__ import annotations

import json
import re
from typing import Any

from nbconductor.errors import StoreError
from nbconductor.storage.duckdb import payload_tables

__all__ = ("check_user_query", "check_user_statement")

# Statement kinds that only read (DuckDB's StatementType names); DESCRIBE, SHOW and
# SUMMARIZE parse as SELECT.
_READ_ONLY_STATEMENTS = frozenset({"SELECT", "EXPLAIN"})

# What a user query may read besides the tables and views of the file: generators and
# DuckDB's catalog functions. Files, URLs, other databases, Python variables and
# dynamic SQL (query(), query_table()) are not on the list.
_USER_TABLE_FUNCTIONS = frozenset(
    {"range", "generate_series", "unnest", "json_each", "json_tree", "pragma_table_info"}
    | {f"duckdb_{name}" for name in ("tables", "views", "columns", "schemas", "types")}
    | {f"duckdb_{name}" for name in ("constraints", "indexes", "functions")}
)
_USER_DENIED_FUNCTIONS = frozenset({"getenv", "getvariable", "current_setting"})
_EXPLAIN = re.compile(r"^\s*explain(\s+analyze)?\s+", re.IGNORECASE)


def check_user_statement(cursor: Any, query: str, statements: list[Any]) -> str:
    """Refuse anything but one statement that reads the history tables; the query to
    run, with ``result(...)``/``payload(...)`` expanded to the stored tables they name.

    ``statements`` is DuckDB's parse of ``query`` (``cursor.extract_statements``).
    """
    if len(statements) != 1:
        raise StoreError(
            f"give exactly one SQL statement (got {len(statements)}); run them one by one"
        )
    kind = statements[0].type
    if kind.name not in _READ_ONLY_STATEMENTS:
        raise StoreError(
            f"only queries that read are allowed here, not {kind.name}; history "
            "is written by the engine alone"
        )
    query = payload_tables.expand_user_functions(cursor, query)
    check_user_query(cursor, query)
    return query


def check_user_query(cursor: Any, query: str) -> None:
    """Refuse a user query that would read anything but this history file.

    DuckDB's ``enable_external_access`` cannot be turned off for one query only (and
    once off, the store's own Parquet export could not write), so the query's syntax
    tree is checked instead: every table it reads must be a table or view of the file
    (or a CTE of the query), every table function a generator or a catalog function.
    """
    body = _EXPLAIN.sub("", query, count=1)
    ((text,),) = cursor.execute("SELECT json_serialize_sql(?)", [body]).fetchall()
    tree = json.loads(text)
    if tree.get("error"):
        raise StoreError(
            "only SELECT queries (with DESCRIBE, SUMMARIZE, SHOW, EXPLAIN) over the history "
            f"tables are allowed here: {tree.get('error_message', 'not a plain query')}"
        )
    known = {
        name.lower()
        for (name,) in cursor.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    ctes: set[str] = set()
    used: list[tuple[str, str]] = []
    _walk_query(tree, ctes, used)
    for what, name in used:
        lowered = name.lower().strip('"')
        if what == "table" and lowered not in known and lowered not in ctes:
            raise StoreError(
                f"this query reads {name!r}, which is not a table of the history file; "
                "queries here read the history tables only (executions, events, "
                "definitions, schedules), not files, URLs or other databases"
            )
        if what == "table function" and lowered not in _USER_TABLE_FUNCTIONS:
            raise StoreError(
                f"this query calls table function {name}(), which is not allowed here: "
                "queries read the history tables only, not files, URLs or other databases"
            )
        if what == "function" and lowered in _USER_DENIED_FUNCTIONS:
            raise StoreError(f"function {name}() is not allowed in queries here")


def _walk_query(node: Any, ctes: set[str], used: list[tuple[str, str]]) -> None:
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "TABLE_FUNCTION":
            used.append(("table function", node["function"]["function_name"]))
        elif kind == "BASE_TABLE":
            if node.get("schema_name", "").lower() not in ("information_schema", "pg_catalog"):
                used.append(("table", node["table_name"]))
        elif node.get("class") == "FUNCTION":
            used.append(("function", node.get("function_name", "")))
        for entry in node.get("cte_map", {}).get("map", []) if kind else []:
            ctes.add(str(entry.get("key", "")).lower())
        for value in node.values():
            _walk_query(value, ctes, used)
    elif isinstance(node, list):
        for value in node:
            _walk_query(value, ctes, used)
