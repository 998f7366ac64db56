"""DataFrames and Arrow tables inline in the event JSON, as base64 Arrow IPC: the form
every frame had before large values were stored by content hash (``values.py``), and
still the form of a frame encoded without a store to hold it. Files written that way
keep decoding through here.
"""

from __future__ import annotations

import base64
import io
import sys
from typing import Any

from nbconductor.storage.values import import_optional

__all__ = ("decoder", "encode")


def encode(value: Any) -> tuple[str, str] | None:
    """``(kind, base64 text)`` of a pandas/polars DataFrame or pyarrow Table, or None.

    The libraries are looked up in ``sys.modules`` only: a value cannot be one of their
    objects unless the library was already imported, so this never imports them.
    """
    module = type(value).__module__.partition(".")[0]
    if module == "pandas":
        pd = sys.modules["pandas"]
        if isinstance(value, pd.DataFrame):
            pa = import_optional("pyarrow", "store pandas DataFrames")
            return ("pandas", _b64(_arrow_ipc(pa, pa.Table.from_pandas(value))))
    elif module == "polars":
        pl = sys.modules["polars"]
        if isinstance(value, pl.DataFrame):
            return ("polars", _b64(value.write_ipc(None).getvalue()))
    elif module == "pyarrow":
        pa = sys.modules["pyarrow"]
        if isinstance(value, pa.Table):
            return ("arrow", _b64(_arrow_ipc(pa, value)))
    return None


def _arrow_ipc(pa: Any, table: Any) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _read_arrow_ipc(pa: Any, data: bytes) -> Any:
    with pa.ipc.open_stream(pa.py_buffer(data)) as reader:
        return reader.read_all()


def decoder(kind: str) -> Any:
    def decode_it(v: str, obj: dict[str, Any]) -> Any:
        data = base64.b64decode(v)
        if kind == "polars":
            pl = import_optional("polars", "read a stored polars DataFrame")
            return pl.read_ipc(io.BytesIO(data))
        pa = import_optional("pyarrow", f"read a stored {kind} table")
        table = _read_arrow_ipc(pa, data)
        return table.to_pandas() if kind == "pandas" else table

    return decode_it


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
