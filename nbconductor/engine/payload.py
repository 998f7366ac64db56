"""Arguments, results and event data as stored text, through the storage codec.

Event ``data`` is a JSON object whose payload fields embed codec JSON as-is (no
double encoding), so SQL users can read ``data->'$.result'`` directly.

An engine's payloads store large values apart (:mod:`nbconductor.storage.values`):
encoding a frame, table, array or long bytes/text stores it once in the history store,
on the encoding thread (a task's result on the task's thread), before the event that
references it exists. Decoding for workflow code gives a
:class:`~nbconductor.storage.lazy_value.LazyValue` that loads on first use, so replay
loads only what the workflow touches; tasks and callers get the loaded value.
"""

from __future__ import annotations

import json
import math
import sys
import threading
from typing import Any

from nbconductor.engine.arguments import check_call
from nbconductor.errors import PayloadError, PayloadNotStored, StoreError
from nbconductor.storage import codec, plain_json
from nbconductor.storage.lazy_value import LazyValue
from nbconductor.storage.values import DEFAULT_INLINE_LIMIT, capture, restore

# The class a stored kind decodes to, by module and name: isinstance() on a LazyValue
# answers without loading it.
_CLASSES = {
    "pandas": ("pandas", "DataFrame"),
    "polars": ("polars", "DataFrame"),
    "arrow": ("pyarrow", "Table"),
    "batch": ("pyarrow", "RecordBatch"),
    "numpy": ("numpy", "ndarray"),
}


_SCALARS = (str, int, float, bool)


def _plain_scalars(args: tuple, limit: int | None) -> bool:
    """Whether every argument is stored as plain JSON as it is: an int, a bool, None, a
    finite float or a string short enough to stay inline (exact types: a str-based
    Enum or an int subclass is tagged by the codec)."""
    for value in args:
        kind = type(value)
        if kind is int or kind is bool or value is None:
            continue
        if kind is str:
            if limit is not None and len(value) > limit:
                return False
            continue
        if kind is float and math.isfinite(value):
            continue
        return False
    return True


def check_inline_limit(limit: Any) -> None:
    """Raise ValueError unless ``limit`` is a whole number of bytes, 0 or more."""
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise ValueError(
            f"inline_limit is a number of bytes (0 or more), e.g. 65536, not {limit!r}"
        )


class _Capture:
    """The codec's LargeValues for one engine: capture, store, return the reference."""

    __slots__ = ("count", "failure", "limit", "store")

    def __init__(self, store: Any, limit: int) -> None:
        self.store = store
        self.limit = limit
        self.failure: PayloadNotStored | None = None
        self.count = 0

    def capture(self, value: Any) -> dict[str, Any] | None:
        stored = capture(value, self.limit)
        if stored is None:
            return None
        self.count += 1  # racy across threads, and only read by tests when all is quiet
        try:
            self.store.put_payload(stored)
        except StoreError as exc:
            # The engine stops on it (Activations.run_code, TaskDispatch._on_outcome).
            self.failure = PayloadNotStored(str(exc))
            raise self.failure from exc
        return stored.ref()


class Payloads:
    """Arguments and results to stored text and back, for one engine.

    Args:
        allow_pickle: store values the codec cannot (arbitrary objects) by pickle, and
            unpickle them when read. Unpickling runs code, so a history file is only
            trusted that far by the engine that opted in (``Engine(allow_pickle=True)``);
            every other engine, and every reader without an engine, still refuses.
        store: where large values are stored (the engine's history store); without
            one, frames are embedded in the JSON as base64 Arrow IPC (readers without
            an engine never write).
        inline_limit: bytes and strings longer than this are stored apart.

    Attributes:
        loads: how many stored values this engine has loaded (a test's window on
            laziness); ``on_load``, when set, is called with each loaded reference.
            :attr:`captures` counts the large values hashed.
    """

    __slots__ = ("_large", "_lock", "allow_pickle", "loads", "on_load", "store")

    def __init__(
        self,
        *,
        allow_pickle: bool = False,
        store: Any = None,
        inline_limit: int = DEFAULT_INLINE_LIMIT,
    ) -> None:
        check_inline_limit(inline_limit)
        self.allow_pickle = allow_pickle
        self.store = store
        self._large = None if store is None else _Capture(store, inline_limit)
        self._lock = threading.Lock()
        self.loads = 0
        self.on_load = None

    # -- loading stored values ------------------------------------------------------------

    def load(self, ref: dict[str, Any]) -> Any:
        """The value a reference names, read from the store now."""
        if self.store is None:
            return codec.UnloadedValue(ref)
        stored = self.store.get_payload(ref["hash"])
        with self._lock:
            self.loads += 1
        if self.on_load is not None:
            self.on_load(ref)
        return restore(stored.kind, stored.meta, table=stored.table, blob=stored.blob)

    def _lazy(self, ref: dict[str, Any]) -> Any:
        kind = ref.get("kind")
        where = _CLASSES.get(kind)
        if self.store is None or where is None:
            return self.load(ref)  # bytes and text: loaded now, they behave as builtins
        module = sys.modules.get(where[0])
        if module is None:  # the library is not imported yet: it will be to use the value
            module = __import__(where[0])
        return LazyValue(ref, getattr(module, where[1]), lambda: self.load(ref))

    @property
    def captures(self) -> int:
        """How many large values this engine has hashed and stored (or found stored)."""
        return 0 if self._large is None else self._large.count

    @property
    def store_failure(self) -> PayloadNotStored | None:
        """The error of a failed store of a large value (a full disk), if one failed."""
        return None if self._large is None else self._large.failure

    def _loader(self, lazy: bool) -> Any:
        return self._lazy if lazy else self.load

    def encode_input(self, args: tuple, kwargs: dict, *, what: str, signature=None) -> str:
        """Encode call arguments; a failure names the argument that cannot be stored."""
        allow, large = self.allow_pickle, self._large
        if not kwargs and _plain_scalars(args, None if large is None else large.limit):
            # Most task calls pass a few numbers or short strings: their JSON is the
            # codec's without walking the value (4.3 us -> 1.5 us a call).
            return plain_json.dumps_plain({"args": list(args), "kwargs": {}})
        try:
            return codec.encode(
                {"args": list(args), "kwargs": kwargs},
                what=what,
                allow_pickle=allow,
                large=large,
            )
        except PayloadError:
            names = _parameter_names(signature, len(args))
            for i, value in enumerate(args):
                label = f"argument {names[i]!r}" if i < len(names) else f"positional argument {i}"
                codec.encode(value, what=f"{label} of {what}", allow_pickle=allow, large=large)
            for key, value in kwargs.items():
                codec.encode(
                    value, what=f"argument {key!r} of {what}", allow_pickle=allow, large=large
                )
            raise

    def encode_call(self, signature, args: tuple, kwargs: dict, *, what: str) -> str:
        """Check a call's arguments against ``signature`` and encode them.

        Raises:
            TypeError: the arguments do not fit (``"task fetch(): missing ..."``).
            PayloadError: an argument cannot be stored (naming the argument).
        """
        check_call(signature, args, kwargs, what)
        return self.encode_input(args, kwargs, what=what, signature=signature)

    def decode_input(self, text: str, *, lazy: bool = False) -> tuple[tuple, dict]:
        """Call arguments back from :meth:`encode_input`'s text (stored values loaded,
        or left to load on first use when ``lazy``)."""
        value = codec.decode(text, allow_pickle=self.allow_pickle, load=self._loader(lazy))
        if value is None:
            return (), {}
        return tuple(value.get("args", ())), dict(value.get("kwargs", {}))

    def encode_value(self, value: Any, *, what: str) -> str:
        """A value (a result, a signal's payload) as stored text; large values inside
        are stored first (on this thread)."""
        return codec.encode(value, what=what, allow_pickle=self.allow_pickle, large=self._large)

    def decode_value(self, text: str | None, *, lazy: bool = False) -> Any:
        """A value back from its stored text (None stays None)."""
        if text is None:
            return None
        return codec.decode(text, allow_pickle=self.allow_pickle, load=self._loader(lazy))

    def payload_field(self, data: dict, key: str, *, lazy: bool = False) -> Any:
        """Decode an embedded payload field of event data (None when absent)."""
        if key not in data:
            return None
        value = data[key]
        if value is None or type(value) in _SCALARS:
            return value  # nothing the codec tagged: skip writing and parsing it again
        text = json.dumps(data[key], separators=(",", ":"))
        return codec.decode(text, allow_pickle=self.allow_pickle, load=self._loader(lazy))


PLAIN = Payloads()
"""For readers without an engine (offline writes, displays): never pickles."""

encode_input = PLAIN.encode_input
encode_call = PLAIN.encode_call
decode_input = PLAIN.decode_input
encode_value = PLAIN.encode_value
decode_value = PLAIN.decode_value
payload_field = PLAIN.payload_field


def preview(value: Any, store: Any, rows: int = 5) -> str | None:
    """A stored value's preview: what it is (kind, rows, size, schema) and, for a value
    stored as a table, its first ``rows`` rows, read by SQL without loading it.

    ``value`` is a reference (from event data), an
    :class:`~nbconductor.storage.codec.UnloadedValue` or a
    :class:`~nbconductor.storage.lazy_value.LazyValue`; anything else gives None.
    """
    if isinstance(value, codec.UnloadedValue):
        ref = value.ref
    elif type(value) is LazyValue:
        ref = value._nbc_ref
    elif isinstance(value, dict) and value.get(codec.TAG) == "ref":
        ref = value
    else:
        return None
    text = repr(codec.UnloadedValue(ref))
    try:
        head = store.payload_preview(ref["hash"], rows) if store is not None else None
    except Exception:  # pruned, or a store that cannot say: what it is is enough
        head = None
    if not head:
        return text
    columns, values = head
    cells = [[str(c) for c in columns]] + [[_cell(v) for v in row] for row in values]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in cells]
    more = (ref.get("rows") or 0) - len(values)
    if more > 0:
        lines.append(f"... {more:,} more rows")
    return "\n".join([text, *(line.rstrip() for line in lines)])


def _cell(value: Any, width: int = 24) -> str:
    text = repr(value) if isinstance(value, (str, bytes)) else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _parameter_names(signature, count: int) -> list[str]:
    if signature is None:
        return []
    return [p.name for p in signature.parameters.values()][:count]


def event_data(fields: dict | None = None, **payloads: str | None) -> str:
    """Event data text: plain ``fields`` plus already-encoded payloads embedded as JSON."""
    # The engine's own fields: plain JSON, never cyclic (json.dumps would build an
    # encoder per event).
    if not fields and len(payloads) == 1:  # TaskScheduled's input, a marker's value
        ((key, text),) = payloads.items()
        return "{}" if text is None else f'{{"{key}":{text}}}'
    head = plain_json.dumps_plain(fields) if fields else "{}"
    parts = [f'"{key}":{text}' for key, text in payloads.items() if text is not None]
    if not parts:
        return head
    joined = ",".join(parts)
    return "{" + joined + "}" if head == "{}" else head[:-1] + "," + joined + "}"


def read_data(text: str) -> dict:
    return plain_json.loads_plain(text) if text else {}
