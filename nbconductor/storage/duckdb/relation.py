"""What ``engine.sql()`` hands a user: a DuckDB relation over the history that reads only.

A DuckDB relation is lazy: it runs its query when asked (``.df()``, ``.pl()``,
``.arrow()``, ``.fetchall()``, or when a notebook displays it), on its own connection,
so it never shares the engine's writer connection with the user's thread (DuckDB
connections are not thread-safe; see :meth:`DuckDBStore.relation`). Each one sees
the history as committed when it runs.

A bare relation could also write through its connection (``rel.query("t", "DELETE
FROM executions")``, ``rel.insert_into("events")``, ``rel.create("t")``): this wrapper
passes on every other method and refuses those. Relations derived from it
(``rel.filter(...)``, ``rel.limit(5)``) are wrapped the same way. The store hands
this module the relation: only the store imports duckdb.
"""

from __future__ import annotations

from typing import Any

from nbconductor.errors import StoreError

__all__ = ("HistoryRelation",)

# Methods of DuckDBPyRelation that run SQL of the caller's or write into the database.
_REFUSED = frozenset(
    {"query", "sql_query", "create", "create_view", "insert", "insert_into", "to_table"}
    | {"to_view", "update", "execute"}
)


class HistoryRelation:
    """A read-only DuckDB relation over the history (from ``engine.sql``).

    Everything a ``duckdb.DuckDBPyRelation`` offers for reading works: ``.df()``
    (pandas), ``.pl()`` (polars), ``.arrow()``, ``.fetchall()``, ``.columns``,
    ``.filter()``, ``.aggregate()``, ``.limit()``, ...; a notebook shows it as a table.
    Methods that would write or run other SQL raise :class:`StoreError`.

    Example:
        >>> rel = engine.sql("SELECT workflow, status, count(*) AS n FROM executions GROUP BY ALL")
        >>> rel.df()          # a pandas DataFrame
        >>> rel.filter("n > 1").pl()
    """

    __slots__ = ("__weakref__", "_relation")

    def __init__(self, relation: Any) -> None:
        self._relation = relation

    def __getattr__(self, name: str) -> Any:
        if name in _REFUSED:
            raise StoreError(
                f"a relation from engine.sql() reads only: .{name}() would write or run "
                "other SQL on the history file. Run another engine.sql(QUERY), or take the "
                "rows out with .df(), .pl() or .arrow() and work on those."
            )
        value = getattr(self._relation, name)
        if callable(value):
            return _wrapping(value)
        return _wrapped(value)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self._relation)) - _REFUSED)

    def __repr__(self) -> str:
        return repr(self._relation)

    def __len__(self) -> int:
        return len(self._relation)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        # DuckDB draws a text table and an HTML one (the first rows) for notebooks.
        return self._relation._repr_mimebundle_(include=include, exclude=exclude)


def _wrapping(method: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        args = tuple(a._relation if isinstance(a, HistoryRelation) else a for a in args)
        return _wrapped(method(*args, **kwargs))

    call.__doc__ = method.__doc__
    call.__name__ = getattr(method, "__name__", "method")
    return call


def _wrapped(value: Any) -> Any:
    # A derived relation runs on the same connection: it must read only too.
    if type(value).__name__ == "DuckDBPyRelation":
        return HistoryRelation(value)
    return value
