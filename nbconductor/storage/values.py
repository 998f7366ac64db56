"""Large values as stored data: DataFrames, Arrow tables, numpy arrays, big bytes and text.

A value this module knows is *captured* as a :class:`StoredValue`: its kind, a content
hash, its size, a one-line schema, and the data in the form a store keeps — an Arrow
table (kept by the DuckDB store as a native table, queryable by SQL) or a blob (numpy
arrays, bytes, text, and tables whose types DuckDB cannot hold exactly). Events then
hold only :meth:`StoredValue.ref`, a small tagged object; :func:`restore` turns the
stored data back into a value of the original type.

Hashing reads Arrow buffers as they are: a table is hashed by streaming its Arrow IPC
form into sha256 (buffer by buffer; the whole table is never copied, nothing goes
through base64 or JSON), after
``combine_chunks`` so that the same rows hash the same however they are chunked (a no-op
for single-chunk columns). The IPC form leaves out slices' unused bytes and validity
bitmaps of columns without nulls, so equal data gives equal hashes.

pandas, polars, pyarrow and numpy are looked up in ``sys.modules`` only: a value cannot
be one of their objects unless the library was imported, so this never imports them.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import sys
from dataclasses import dataclass, field
from typing import Any

from nbconductor.errors import PayloadError

__all__ = (
    "DEFAULT_INLINE_LIMIT",
    "REF_TAG",
    "TABLE_KINDS",
    "StoredValue",
    "capture",
    "describe_ref",
    "import_optional",
    "restore",
)

REF_TAG = "ref"
DEFAULT_INLINE_LIMIT = 64 * 1024
"""Bytes and strings longer than this (in bytes or characters) are stored apart."""

TABLE_KINDS = frozenset({"pandas", "polars", "arrow", "batch"})
"""Kinds whose data is an Arrow table."""


@dataclass(slots=True)
class StoredValue:
    """A large value captured for storage, with what a reference to it says.

    ``table`` (an Arrow table of storage-friendly types) or ``blob`` (bytes-like) holds
    the data; ``meta`` (JSON-able) holds what :func:`restore` needs besides the data.
    """

    kind: str
    hash: str
    rows: int | None
    nbytes: int
    schema: str
    meta: dict[str, Any] = field(default_factory=dict)
    table: Any = None
    blob: Any = None

    def ref(self) -> dict[str, Any]:
        """The small object an event holds in place of the value."""
        return {
            "__nbc__": REF_TAG,
            "kind": self.kind,
            "hash": self.hash,
            "rows": self.rows,
            "bytes": self.nbytes,
            "schema": self.schema,
        }


def describe_ref(ref: dict[str, Any]) -> str:
    """A reference in a few words: ``pandas DataFrame, 1,000,000 rows (id: int64, ...)``."""
    kind = ref.get("kind", "?")
    label = _LABELS.get(kind, kind)
    size = ref.get("bytes") or 0
    rows = ref.get("rows")
    parts = [f"{rows:,} rows" if rows is not None else None, _human_bytes(size)]
    shown = ", ".join(p for p in parts if p)
    schema = ref.get("schema") or ""
    if len(schema) > 120:
        schema = schema[:117] + "..."
    return f"{label}, {shown}" + (f" ({schema})" if schema else "")


_LABELS = {
    "pandas": "pandas DataFrame",
    "polars": "polars DataFrame",
    "arrow": "Arrow Table",
    "batch": "Arrow RecordBatch",
    "numpy": "numpy array",
    "bytes": "bytes",
    "str": "str",
}


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


# --- capturing --------------------------------------------------------------------------


def capture(value: Any, inline_limit: int) -> StoredValue | None:
    """The value as a :class:`StoredValue`, or None when it stays inline in the event.

    Frames, tables and arrays are always captured; bytes and text only above
    ``inline_limit`` (bytes, or characters).

    Raises:
        PayloadError: the value is of a supported library but cannot be converted
            (for example a pandas frame with duplicate column names).
    """
    kind = type(value)
    if kind is bytes or kind is bytearray or kind is memoryview:
        data = memoryview(value).cast("B") if kind is memoryview else value
        if len(data) <= inline_limit:
            return None
        return _blob("bytes", data, {"type": kind.__name__})
    if kind is str:
        if len(value) <= inline_limit:
            return None
        return _blob("str", value.encode("utf-8", "surrogatepass"), {})
    module = kind.__module__.partition(".")[0]
    try:
        if module == "pandas":
            pd = sys.modules["pandas"]
            if isinstance(value, pd.DataFrame):
                pa = import_optional("pyarrow", "store pandas DataFrames")
                return _table("pandas", pa, pa.Table.from_pandas(value))
        elif module == "polars":
            pl = sys.modules["polars"]
            if isinstance(value, pl.DataFrame):
                pa = import_optional("pyarrow", "store polars DataFrames")
                return _table("polars", pa, value.to_arrow(compat_level=pl.CompatLevel.oldest()))
        elif module == "pyarrow":
            pa = sys.modules["pyarrow"]
            if isinstance(value, pa.Table):
                return _table("arrow", pa, value)
            if isinstance(value, pa.RecordBatch):
                return _table("batch", pa, pa.Table.from_batches([value]))
        elif module == "numpy":
            np = sys.modules["numpy"]
            if kind is np.ndarray:
                return _array(np, value)
    except PayloadError:
        raise
    except Exception as exc:  # a library's own refusal, e.g. duplicate column names
        raise PayloadError(f"cannot store this {kind.__name__}: {exc}") from exc
    return None


def _blob(kind: str, data: Any, meta: dict[str, Any]) -> StoredValue:
    digest = hashlib.sha256(f"{kind}{meta}".encode())
    digest.update(data)
    size = len(data)
    return StoredValue(kind, digest.hexdigest()[:32], None, size, kind, meta, blob=data)


def _array(np: Any, value: Any) -> StoredValue | None:
    if value.dtype.hasobject:
        return None  # Python objects inside: not data the codec can keep as bytes
    # A copy only when the array is not C-contiguous (ascontiguousarray makes 0-d 1-d).
    data = value if value.flags.c_contiguous else np.ascontiguousarray(value)
    meta = {"dtype": data.dtype.str, "shape": list(data.shape)}
    if data.dtype.names is not None:  # a structured dtype: its full description
        meta["descr"] = _jsonable_descr(data.dtype.descr)
    raw = data.reshape(-1).view(np.uint8)  # its bytes, whatever the dtype: no copy
    digest = hashlib.sha256(f"numpy{meta}".encode())
    digest.update(raw)
    schema = f"{data.dtype}{list(data.shape)}"
    rows = int(data.shape[0]) if data.ndim else None
    stored = StoredValue(
        "numpy", digest.hexdigest()[:32], rows, data.nbytes, schema, meta, blob=raw
    )
    return stored


def _jsonable_descr(descr: list) -> list:
    return [
        [name, _jsonable_descr(t) if isinstance(t, list) else t, *rest] for name, t, *rest in descr
    ]


class _HashSink:
    """A file-like object that feeds what is written to it into a hash."""

    def __init__(self, digest: Any) -> None:
        self.digest = digest
        self.closed = False

    def write(self, data: Any) -> int:
        self.digest.update(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _table(kind: str, pa: Any, table: Any) -> StoredValue:
    table = table.combine_chunks()  # zero-copy for columns of one chunk
    digest = hashlib.sha256(kind.encode())
    with pa.ipc.new_stream(pa.PythonFile(_HashSink(digest), mode="w"), table.schema) as writer:
        writer.write_table(table)
    meta: dict[str, Any] = {
        "arrow_schema": base64.b64encode(table.schema.serialize().to_pybytes()).decode()
    }
    storage_schema = _storage_schema(pa, table.schema)
    if storage_schema is not None:
        # DuckDB keeps a categorical column as its values: its categories (unused ones
        # and their order included) go in meta.
        for f in table.schema:
            if pa.types.is_dictionary(f.type):
                dictionary = table.column(f.name).chunk(0).dictionary if table.num_rows else None
                values = [] if dictionary is None else dictionary.to_pylist()
                if not all(isinstance(v, (str, int)) for v in values):
                    storage_schema = None
                    break
                meta.setdefault("dictionaries", {})[f.name] = values
    stored = StoredValue(
        kind,
        digest.hexdigest()[:32],
        table.num_rows,
        table.nbytes,
        _schema_text(table.schema),
        meta,
    )
    if storage_schema is None:
        # Types a DuckDB table would not give back exactly: keep the IPC stream instead.
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        stored.blob = sink.getvalue()
        meta["format"] = "arrow-ipc"
    else:
        stored.table = table if storage_schema.equals(table.schema) else table.cast(storage_schema)
        meta["format"] = "table"
    return stored


def _schema_text(schema: Any) -> str:
    return ", ".join(f"{f.name}: {f.type}" for f in schema if not f.name.startswith("__index"))


def _storage_schema(pa: Any, schema: Any) -> Any:
    """The schema a DuckDB table holds ``schema``'s columns in, or None when one of its
    types would not come back exactly (durations, float16, null columns, ...)."""
    fields = []
    seen: set[str] = set()
    for f in schema:
        folded = f.name.lower()  # DuckDB column names ignore case
        if folded in seen or not f.name:
            return None
        seen.add(folded)
        storage = _storage_type(pa, f.type)
        if storage is None:
            return None
        fields.append(pa.field(f.name, storage, f.nullable))
    return pa.schema(fields, metadata=schema.metadata)


def _storage_type(pa: Any, t: Any) -> Any:
    types = pa.types
    if types.is_timestamp(t):
        # A zone-aware timestamp is stored as its UTC wall time in its own unit: DuckDB's
        # TIMESTAMPTZ keeps microseconds only, and forgets the zone's name.
        return pa.timestamp(t.unit) if t.tz is not None else t
    if types.is_dictionary(t):
        value = t.value_type  # categoricals: their values (categories go in meta)
        plain = types.is_string(value) or types.is_large_string(value) or types.is_integer(value)
        return value if plain else None
    if types.is_large_string(t) or types.is_large_binary(t):
        return t
    if types.is_list(t) or types.is_large_list(t):
        inner = _storage_type(pa, t.value_type)
        return None if inner is None else pa.list_(pa.field(t.value_field.name, inner))
    if types.is_struct(t):
        inner = [_storage_type(pa, t.field(i).type) for i in range(t.num_fields)]
        if any(i is None for i in inner) or t.num_fields == 0:
            return None
        return pa.struct([pa.field(t.field(i).name, inner[i]) for i in range(t.num_fields)])
    if (
        types.is_integer(t)
        or types.is_float32(t)
        or types.is_float64(t)
        or types.is_boolean(t)
        or types.is_string(t)
        or types.is_binary(t)
        or types.is_date32(t)
        or (types.is_decimal128(t) and t.precision <= 38)
    ):
        return t
    return None


def import_optional(name: str, purpose: str) -> Any:
    """Import a data library a stored value needs, or say which to install."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise PayloadError(
            f"{name} is needed to {purpose}; install it (pip install {name})"
        ) from exc


# --- restoring --------------------------------------------------------------------------


def _rebuild_dictionaries(pa: Any, table: Any, schema: Any, dictionaries: dict) -> Any:
    if not dictionaries:
        return table
    pc = import_optional("pyarrow.compute", "read a stored categorical column")
    for name, values in dictionaries.items():
        target = schema.field(name).type
        dictionary = pa.array(values, type=target.value_type)
        i = table.schema.get_field_index(name)
        column = table.column(i).cast(target.value_type)
        indices = pc.index_in(column, value_set=dictionary).cast(target.index_type)
        chunks = [
            pa.DictionaryArray.from_arrays(chunk, dictionary, ordered=target.ordered)
            for chunk in indices.chunks
        ]
        table = table.set_column(i, schema.field(name), pa.chunked_array(chunks, type=target))
    return table


def restore(kind: str, meta: dict[str, Any], *, table: Any = None, blob: Any = None) -> Any:
    """The value a :class:`StoredValue` captured, from its stored data.

    Args:
        kind: the stored kind (``pandas``, ``polars``, ``arrow``, ``batch``, ``numpy``,
            ``bytes``, ``str``).
        meta: the stored meta.
        table: the stored Arrow table (for tables kept as tables).
        blob: the stored bytes (for everything else).

    Raises:
        PayloadError: the kind is unknown (a newer nbconductor wrote it) or a library
            it needs is not installed.
    """
    if kind == "bytes":
        data = bytes(blob)
        return bytearray(data) if meta.get("type") == "bytearray" else data
    if kind == "str":
        return bytes(blob).decode("utf-8", "surrogatepass")
    if kind == "numpy":
        np = import_optional("numpy", "read a stored numpy array")
        dtype = np.dtype([tuple(d) for d in meta["descr"]] if "descr" in meta else meta["dtype"])
        return np.frombuffer(bytearray(blob), dtype=dtype).reshape(tuple(meta["shape"]))
    if kind not in TABLE_KINDS:
        raise PayloadError(
            f"stored value has unknown kind {kind!r}; it was probably written by a newer "
            "nbconductor: upgrade to read it"
        )
    pa = import_optional("pyarrow", f"read a stored {_LABELS[kind]}")
    schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(meta["arrow_schema"])))
    if meta.get("format") == "arrow-ipc":
        with pa.ipc.open_stream(pa.py_buffer(blob)) as reader:
            table = reader.read_all()
    else:
        table = _rebuild_dictionaries(pa, table, schema, meta.get("dictionaries") or {})
        table = table.cast(schema) if not table.schema.equals(schema) else table
        table = table.replace_schema_metadata(schema.metadata)
    if kind == "pandas":
        return table.to_pandas()
    if kind == "polars":
        pl = import_optional("polars", "read a stored polars DataFrame")
        return pl.from_arrow(table)
    if kind == "batch":
        batches = table.combine_chunks().to_batches()
        if batches:
            return batches[0]
        return pa.RecordBatch.from_arrays(
            [pa.array([], type=f.type) for f in schema], schema=schema
        )
    return table
