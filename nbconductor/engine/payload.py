"""Arguments, results and event data as stored text, through the storage codec.

Event ``data`` is a JSON object whose payload fields embed codec JSON as-is (no
double encoding), so SQL users can read ``data->'$.result'`` directly.
"""

from __future__ import annotations

import json
from typing import Any

from nbconductor.errors import PayloadError
from nbconductor.storage import codec

# Pickling arbitrary objects is opt-in (Engine(allow_pickle=True)) and process-wide:
# unpickling runs code, so a history file is only trusted that far on request.
allow_pickle = False


def encode_input(args: tuple, kwargs: dict, *, what: str, signature=None) -> str:
    """Encode call arguments; a failure names the argument that cannot be stored."""
    try:
        return codec.encode(
            {"args": list(args), "kwargs": kwargs}, what=what, allow_pickle=allow_pickle
        )
    except PayloadError:
        names = _parameter_names(signature, len(args))
        for i, value in enumerate(args):
            label = f"argument {names[i]!r}" if i < len(names) else f"positional argument {i}"
            codec.encode(value, what=f"{label} of {what}", allow_pickle=allow_pickle)
        for key, value in kwargs.items():
            codec.encode(value, what=f"argument {key!r} of {what}", allow_pickle=allow_pickle)
        raise


def encode_call(signature, args: tuple, kwargs: dict, *, what: str) -> str:
    """Check a call's arguments against ``signature`` and encode them.

    Raises:
        TypeError: the arguments do not fit (``"task fetch(): missing ..."``).
        PayloadError: an argument cannot be stored (naming the argument).
    """
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{what}(): {exc}") from None
    return encode_input(args, kwargs, what=what, signature=signature)


def _parameter_names(signature, count: int) -> list[str]:
    if signature is None:
        return []
    return [p.name for p in signature.parameters.values()][:count]


def decode_input(text: str) -> tuple[tuple, dict]:
    value = codec.decode(text, allow_pickle=allow_pickle)
    if value is None:
        return (), {}
    return tuple(value.get("args", ())), dict(value.get("kwargs", {}))


def encode_value(value: Any, *, what: str) -> str:
    return codec.encode(value, what=what, allow_pickle=allow_pickle)


def decode_value(text: str | None) -> Any:
    return None if text is None else codec.decode(text, allow_pickle=allow_pickle)


def event_data(fields: dict | None = None, **payloads: str | None) -> str:
    """Event data text: plain ``fields`` plus already-encoded payloads embedded as JSON."""
    head = json.dumps(fields or {}, separators=(",", ":"))
    parts = [f'"{key}":{text}' for key, text in payloads.items() if text is not None]
    if not parts:
        return head
    joined = ",".join(parts)
    return "{" + joined + "}" if head == "{}" else head[:-1] + "," + joined + "}"


def read_data(text: str) -> dict:
    return json.loads(text) if text else {}


def payload_field(data: dict, key: str) -> Any:
    """Decode an embedded payload field of event data (None when absent)."""
    if key not in data:
        return None
    return codec.decode(json.dumps(data[key], separators=(",", ":")), allow_pickle=allow_pickle)
