"""The payload codec: Python values to JSON text and back.

Plain JSON values are stored as they are, so the common payloads (``None``, numbers,
strings, small dicts) cost one ``json.dumps``. Everything else the codec knows is
written as a *tagged* object, ``{"__nbc__": TAG, "v": ...}``, that ``decode`` turns back
into the original type: datetimes, dates, times, timedeltas, Decimals, UUIDs, bytes,
tuples, sets, Enum members, dataclasses, dicts whose keys are not strings, non-finite
floats, and (when the libraries are installed) pandas and polars DataFrames and pyarrow
Tables. A dict that itself holds the key ``"__nbc__"`` is escaped so it cannot be
mistaken for a tag. Other objects are refused with a :class:`PayloadError` that says
where in the value they sit, unless the caller opts in to pickle.

The output is ASCII-only JSON (non-ASCII characters escaped), so it is valid UTF-8
whatever the strings hold, and DuckDB's JSON functions can read it:
``SELECT data->>'$.v' FROM events``.

Large values leave the JSON when the caller passes ``large`` (an engine does; see
:mod:`nbconductor.storage.values`): DataFrames, Arrow tables and batches, numpy arrays
and bytes or strings over ``large.limit`` are handed to ``large.capture``, which stores
them once by content hash and returns the small reference the JSON holds instead,
``{"__nbc__": "ref", "kind": ..., "hash": ..., "rows": ..., "bytes": ..., "schema": ...}``.
``decode`` hands a reference to its ``load`` callable; without one it decodes to an
:class:`UnloadedValue` that shows what is stored without reading it. Without ``large``,
frames are written as base64 Arrow IPC inside the JSON, as versions before 0.2 did for
every frame; ``decode`` reads both forms.

Example:
    >>> text = encode({"when": datetime(2024, 5, 1, tzinfo=timezone.utc), "n": 3})
    >>> decode(text)["when"].year
    2024
"""

from __future__ import annotations

import base64
import dataclasses
import decimal
import enum
import importlib
import json
import math
import pickle
import sys
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol

from nbconductor.errors import PayloadError
from nbconductor.storage import inline_frames
from nbconductor.storage.lazy_value import LazyValue, unwrap
from nbconductor.storage.plain_json import COMPACT as _JSON
from nbconductor.storage.plain_json import dumps_plain, loads_plain
from nbconductor.storage.values import REF_TAG, describe_ref

__all__ = ("TAG", "LargeValues", "UnloadedValue", "allow_types", "decode", "encode")

TAG = "__nbc__"

_HINT = (
    "convert it to a JSON-friendly value, a dataclass, or opt in to pickle with allow_pickle=True"
)
_SCALARS = (str, int, bool, type(None))
_LONG = (str, bytes, bytearray)
# Modules whose values may be large values (frames, tables, arrays): only their objects
# are offered to LargeValues.capture, so ordinary values cost no extra check.
_LARGE_MODULES = frozenset({"pandas", "polars", "pyarrow", "numpy"})
_MISSING = object()

# Enum and dataclass types decode may rebuild, by their stored path: the ones this
# process encoded and the ones the user allowed (see allow_types). A history file is
# input: the type it names is looked up, never imported on its say-so.
_known_types: dict[str, type] = {}
_allowed_modules: set[str] = set()


def allow_types(*items: type | str) -> None:
    """Let stored values of these Enum or dataclass types be rebuilt from history.

    Reading a value back never imports a module because a history file names it: a
    type is rebuilt only if this process stored a value of it, if the user allowed it
    here, or if its module is already imported and it is an Enum or a dataclass. Allow
    a type (or every type of a module, by module name) whose module should be imported
    on demand, e.g. to read old results before any code has used the type.

    Args:
        items: Enum or dataclass types, or module names (``"myproject.models"``).

    Raises:
        TypeError: an item is neither an Enum or dataclass type nor a module name.

    Example:
        >>> allow_types(Color, "myproject.models")
    """
    for item in items:
        if isinstance(item, str) and item:
            _allowed_modules.add(item)
        elif isinstance(item, type) and (
            issubclass(item, enum.Enum) or dataclasses.is_dataclass(item)
        ):
            _known_types[_type_path(item)] = item
        else:
            raise TypeError(
                f"allow_types() takes Enum or dataclass types or module names, got {item!r}"
            )


class LargeValues(Protocol):
    """Where :func:`encode` puts large values (an engine's payload store)."""

    limit: int
    """Bytes and strings longer than this are captured; shorter ones stay inline."""

    def capture(self, value: Any) -> dict[str, Any] | None:
        """Store ``value`` if it is a large value and return its reference, else None."""


class UnloadedValue:
    """A stored value read without loading it: what it is, not its data.

    Readers without an engine (displays, the CLI) decode references to this; its
    ``repr`` is a preview such as ``<stored pandas DataFrame, 1,000,000 rows, 22.9 MB
    (id: int64, ...)>``.
    """

    __slots__ = ("ref",)

    def __init__(self, ref: dict[str, Any]) -> None:
        self.ref = ref

    def __repr__(self) -> str:
        return f"<stored {describe_ref(self.ref)}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnloadedValue) and other.ref == self.ref

    def __hash__(self) -> int:
        return hash(self.ref.get("hash"))


# --- encoding --------------------------------------------------------------------------


def encode(
    value: Any,
    *,
    what: str = "value",
    allow_pickle: bool = False,
    large: LargeValues | None = None,
) -> str:
    """Encode a value as JSON text for history.

    Args:
        value: The value to store.
        what: Names the value in error messages, e.g. ``"argument 'conn' of task fetch"``.
        allow_pickle: Pickle objects the codec does not know instead of refusing them.
            Only code that trusts the history file may decode such payloads.
        large: Where large values go (stored apart, referenced from the JSON); without
            it frames are embedded as base64 Arrow IPC and arrays are refused.

    Returns:
        ASCII JSON text.

    Raises:
        PayloadError: The value (or something inside it) cannot be stored; the message
            names ``what``, the path inside the value and the offending type.
    """
    kind = type(value)
    limit = large.limit if large is not None else None
    # Fast path. json.dumps alone would silently turn tuples into lists, str-based
    # Enums into strings and int keys into str keys, so it only sees values that are
    # plain JSON all the way down (exact types, no tag key, finite floats, no string
    # long enough to be stored apart).
    if (kind in _SCALARS and (limit is None or kind is not str or len(value) <= limit)) or (
        kind is float and math.isfinite(value)
    ):
        return dumps_plain(value)
    try:
        plain = _is_plain(value, limit)  # a cycle is not plain (RecursionError)
    except RecursionError:  # a cycle or very deep nesting: let the full walk explain it
        plain = False
    if plain:
        return dumps_plain(value)
    try:
        return _JSON.encode(_Encoder(what, allow_pickle, large).walk(value, "", set()))
    except RecursionError as exc:
        raise PayloadError(
            f"{what} is nested too deeply to store; flatten it or store a summary"
        ) from exc


def _is_plain(value: Any, limit: int | None) -> bool:
    kind = type(value)
    if kind is dict:
        items = value.values()
        for key in value:
            if type(key) is not str or key == TAG:
                return False
    elif kind is list:
        items = value
    else:
        return False
    for item in items:
        item_kind = type(item)
        if item_kind in _SCALARS:
            if limit is not None and item_kind is str and len(item) > limit:
                return False
            continue
        if item_kind is float:
            if not math.isfinite(item):
                return False
        elif not _is_plain(item, limit):
            return False
    return True


def _tagged(tag: str, v: Any, **extra: Any) -> dict[str, Any]:
    return {TAG: tag, "v": v, **extra}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _type_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _type_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


class _Encoder:
    """Walks a value, building its tagged JSON form; remembers where it is for errors."""

    def __init__(self, what: str, allow_pickle: bool, large: LargeValues | None = None) -> None:
        self.what = what
        self.allow_pickle = allow_pickle
        self.large = large

    def fail(self, path: str, problem: str, hint: str = _HINT) -> PayloadError:
        where = f" at {path}" if path else ""
        return PayloadError(f"{self.what}{where} {problem}; {hint}")

    def walk(self, value: Any, path: str, active: set[int]) -> Any:
        kind = type(value)
        if kind is LazyValue:
            if self.large is not None:
                return value._nbc_ref  # stored already: neither loaded nor hashed again
            value = unwrap(value)
            kind = type(value)
        large = self.large
        if large is not None and kind in _LONG and len(value) > large.limit:
            return self.captured(value, path)
        if kind in _SCALARS:
            return value
        if kind is float:
            if math.isfinite(value):
                return value
            return _tagged("float", repr(value))  # 'nan', 'inf', '-inf'
        if kind is list or kind is tuple or kind is dict:
            # Cycle check: a container that holds itself would recurse forever.
            marker = id(value)
            if marker in active:
                raise self.fail(
                    path, f"contains itself (a {kind.__name__} cycle)", "break the cycle"
                )
            active.add(marker)
            try:
                if kind is dict:
                    return self.walk_dict(value, path, active)
                items = [self.walk(item, f"{path}[{i}]", active) for i, item in enumerate(value)]
                return items if kind is list else _tagged("tuple", items)
            finally:
                active.discard(marker)
        if isinstance(value, enum.Enum):
            cls = type(value)
            self.check_importable(cls, path)
            _known_types.setdefault(_type_path(cls), cls)
            return _tagged("enum", value.name, type=_type_path(cls))
        if kind is datetime:
            return _tagged("datetime", value.isoformat(), **_zone(value))
        if kind is date:
            return _tagged("date", value.isoformat())
        if kind is time:
            return _tagged("time", value.isoformat(), **_zone(value))
        if kind is timedelta:
            return _tagged("timedelta", [value.days, value.seconds, value.microseconds])
        if kind is decimal.Decimal:
            return _tagged("decimal", str(value))
        if kind is uuid.UUID:
            return _tagged("uuid", str(value))
        if kind is bytes:
            return _tagged("bytes", _b64(value))
        if kind is bytearray:
            return _tagged("bytearray", _b64(bytes(value)))
        if kind is set or kind is frozenset:
            items = [self.walk(item, f"{path}{{item}}", active) for item in value]
            # Set order follows string hashing, which changes between processes; sort so
            # that the same set always encodes to the same text.
            items.sort(key=lambda item: json.dumps(item, sort_keys=True))
            return _tagged(kind.__name__, items)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return self.walk_dataclass(value, path, active)
        if self.large is not None and kind.__module__.partition(".")[0] in _LARGE_MODULES:
            ref = self.captured(value, path)
            if ref is not None:
                return ref
        frame = inline_frames.encode(value)
        if frame is not None:
            return _tagged(*frame)
        if self.allow_pickle:
            try:
                data = pickle.dumps(value, protocol=pickle.DEFAULT_PROTOCOL)
            except Exception as exc:
                raise self.fail(
                    path,
                    f"is a {_type_name(kind)} that cannot be pickled ({exc})",
                    "convert it to a JSON-friendly value or a dataclass",
                ) from exc
            return _tagged("pickle", _b64(data), type=_type_path(kind))
        raise self.fail(path, f"is a {_type_name(kind)}, which cannot be stored in history")

    def captured(self, value: Any, path: str) -> dict[str, Any] | None:
        try:
            return self.large.capture(value)
        except PayloadError as exc:
            raise self.fail(path, f"cannot be stored ({exc})", "convert it first") from exc

    def walk_dict(self, value: dict, path: str, active: set[int]) -> Any:
        if all(type(key) is str for key in value) and TAG not in value:
            return {key: self.walk(item, f"{path}[{key!r}]", active) for key, item in value.items()}
        # Keys that JSON objects cannot hold (and the tag key itself) go as pairs.
        pairs = []
        for key, item in value.items():
            enc_key = self.walk(key, f"{path}<key {key!r}>", active)
            pairs.append([enc_key, self.walk(item, f"{path}[{key!r}]", active)])
        return _tagged("dict", pairs)

    def walk_dataclass(self, value: Any, path: str, active: set[int]) -> Any:
        cls = type(value)
        self.check_importable(cls, path)
        marker = id(value)
        if marker in active:
            raise self.fail(path, "contains itself (a dataclass cycle)", "break the cycle")
        active.add(marker)
        try:
            fields: dict[str, Any] = {}
            for f in dataclasses.fields(value):
                item = getattr(value, f.name, _MISSING)
                if item is not _MISSING:  # an init=False field that was never set
                    fields[f.name] = self.walk(item, f"{path}.{f.name}", active)
        finally:
            active.discard(marker)
        if TAG in fields:  # a field named like the tag: keep it out of the tag namespace
            return _tagged(
                "dataclass",
                _tagged("dict", [[k, v] for k, v in fields.items()]),
                type=_type_path(cls),
            )
        _known_types.setdefault(_type_path(cls), cls)
        return _tagged("dataclass", fields, type=_type_path(cls))

    def check_importable(self, cls: type, path: str) -> None:
        if "<locals>" in cls.__qualname__:
            raise self.fail(
                path,
                f"is a {_type_name(cls)}, defined inside a function, so it cannot be "
                "rebuilt when history is read",
                "define the class at module level (or in its own notebook cell)",
            )


def _zone(value: datetime | time) -> dict[str, Any]:
    """Keys that the ISO text leaves out: a zoneinfo zone's name and the fold."""
    extra: dict[str, Any] = {}
    tz = value.tzinfo
    if tz is not None and type(tz).__module__ == "zoneinfo":
        extra["tz"] = tz.key  # the ISO text only holds the offset, not the zone
    if value.fold:
        extra["fold"] = 1
    return extra


# --- decoding --------------------------------------------------------------------------


def decode(
    text: str,
    *,
    allow_pickle: bool = False,
    load: Callable[[dict[str, Any]], Any] | None = None,
) -> Any:
    """Decode JSON text written by :func:`encode`.

    Args:
        text: The stored text.
        allow_pickle: Unpickle pickle-tagged values. Unpickling runs code chosen by
            whoever wrote the file, so only allow it for history you trust.
        load: Turns a reference to a stored value into the value (an engine's loader);
            without it references decode to :class:`UnloadedValue`.

    Raises:
        PayloadError: The text is not valid JSON, holds a pickle and ``allow_pickle`` is
            false, or names a class that can no longer be imported or rebuilt.
    """
    try:
        if TAG not in text:
            return loads_plain(text)
        return json.loads(text, object_hook=_Decoder(allow_pickle, load).hook)
    except PayloadError:
        raise
    except ValueError as exc:
        raise PayloadError(f"stored payload is not valid JSON ({exc}): {text[:80]!r}") from exc


class _Decoder:
    def __init__(self, allow_pickle: bool, load: Callable[[dict[str, Any]], Any] | None) -> None:
        self.allow_pickle = allow_pickle
        self.load = load

    def hook(self, obj: dict[str, Any]) -> Any:
        # json calls this bottom-up, so nested tagged values are already decoded.
        tag = obj.get(TAG)
        if tag is None:
            return obj
        if tag == REF_TAG:
            return UnloadedValue(obj) if self.load is None else self.load(obj)
        v = obj.get("v")
        decoder = _DECODERS.get(tag)
        if decoder is not None:
            return decoder(v, obj)
        if tag == "pickle":
            if not self.allow_pickle:
                raise PayloadError(
                    f"a stored value of type {obj.get('type', '?')} was pickled; decoding "
                    "it runs code from the history file, so it is refused unless you pass "
                    "allow_pickle=True (only for history you trust)"
                )
            return pickle.loads(base64.b64decode(v))
        raise PayloadError(
            f"stored value has unknown tag {tag!r}; it was probably written by a newer "
            "nbconductor: upgrade to read it"
        )


def _resolve(type_path: str, kind: str) -> Any:
    """The Enum (``kind`` "enum") or dataclass type stored as ``type_path``.

    Only a type this process knows is returned (see :func:`allow_types`); a module is
    imported only when the user allowed it, so a crafted file cannot import modules or
    call arbitrary constructors.
    """
    known = _known_types.get(type_path)
    if known is not None:
        return known
    module_name, _, qualname = type_path.partition(":")
    shown = type_path.replace(":", ".")
    module = sys.modules.get(module_name)
    try:
        if module is None and module_name in _allowed_modules:
            module = importlib.import_module(module_name)
        if module is None:
            raise PayloadError(
                f"stored value needs {shown}, which cannot be imported here: module "
                f"{module_name!r} is not loaded, and nbconductor imports no module that a "
                "history file names. Run the cell or import the module that defines it "
                f"first, or allow it with nbconductor.allow_types({module_name!r})"
            )
        obj: Any = module
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise PayloadError(
            f"stored value needs {shown}, which cannot be imported ({exc}); run the cell or "
            "import the module that defines it first"
        ) from exc
    is_kind = isinstance(obj, type) and (
        issubclass(obj, enum.Enum) if kind == "enum" else dataclasses.is_dataclass(obj)
    )
    if not is_kind:
        raise PayloadError(
            f"stored value claims to be {'an Enum' if kind == 'enum' else 'a dataclass'} "
            f"{shown}, but {shown} is not one; the value is left undecoded (was the "
            "file written by other code?)"
        )
    return obj


def _decode_datetime_like(parse: Any) -> Any:
    def decode_it(v: str, obj: dict[str, Any]) -> Any:
        value = parse(v)
        if "tz" in obj:
            zoneinfo = importlib.import_module("zoneinfo")
            value = value.replace(tzinfo=zoneinfo.ZoneInfo(obj["tz"]))
        if obj.get("fold"):
            value = value.replace(fold=1)
        return value

    return decode_it


def _decode_enum(v: str, obj: dict[str, Any]) -> Any:
    cls = _resolve(obj["type"], "enum")
    try:
        return cls[v]
    except KeyError as exc:
        raise PayloadError(f"enum {obj['type']} has no member {v!r} any more") from exc


def _decode_dataclass(v: Any, obj: dict[str, Any]) -> Any:
    cls = _resolve(obj["type"], "dataclass")
    fields = dataclasses.fields(cls)
    init = {f.name: v[f.name] for f in fields if f.init and f.name in v}
    try:
        value = cls(**init)
    except TypeError as exc:
        raise PayloadError(
            f"cannot rebuild {obj['type']} from stored fields {sorted(v)} ({exc}); its "
            "definition changed since the value was stored"
        ) from exc
    for f in fields:
        if not f.init and f.name in v:
            object.__setattr__(value, f.name, v[f.name])  # works for frozen classes too
    return value


_DECODERS: dict[str, Any] = {
    "float": lambda v, obj: float(v),
    "tuple": lambda v, obj: tuple(v),
    "set": lambda v, obj: set(v),
    "frozenset": lambda v, obj: frozenset(v),
    "dict": lambda v, obj: {key: item for key, item in v},
    "datetime": _decode_datetime_like(datetime.fromisoformat),
    "date": lambda v, obj: date.fromisoformat(v),
    "time": _decode_datetime_like(time.fromisoformat),
    "timedelta": lambda v, obj: timedelta(*v),
    "decimal": lambda v, obj: decimal.Decimal(v),
    "uuid": lambda v, obj: uuid.UUID(v),
    "bytes": lambda v, obj: base64.b64decode(v),
    "bytearray": lambda v, obj: bytearray(base64.b64decode(v)),
    "enum": _decode_enum,
    "dataclass": _decode_dataclass,
    "pandas": inline_frames.decoder("pandas"),
    "polars": inline_frames.decoder("polars"),
    "arrow": inline_frames.decoder("arrow"),
}
