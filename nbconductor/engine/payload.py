"""Arguments, results and event data as stored text, through the storage codec.

Event ``data`` is a JSON object whose payload fields embed codec JSON as-is (no
double encoding), so SQL users can read ``data->'$.result'`` directly.
"""

from __future__ import annotations

import json
from typing import Any

from nbconductor.errors import PayloadError
from nbconductor.storage import codec


class Payloads:
    """Arguments and results to stored text and back, for one engine.

    Args:
        allow_pickle: store values the codec cannot (arbitrary objects) by pickle, and
            unpickle them when read. Unpickling runs code, so a history file is only
            trusted that far by the engine that opted in (``Engine(allow_pickle=True)``);
            every other engine, and every reader without an engine, still refuses.
    """

    __slots__ = ("allow_pickle",)

    def __init__(self, *, allow_pickle: bool = False) -> None:
        self.allow_pickle = allow_pickle

    def encode_input(self, args: tuple, kwargs: dict, *, what: str, signature=None) -> str:
        """Encode call arguments; a failure names the argument that cannot be stored."""
        allow = self.allow_pickle
        try:
            return codec.encode(
                {"args": list(args), "kwargs": kwargs}, what=what, allow_pickle=allow
            )
        except PayloadError:
            names = _parameter_names(signature, len(args))
            for i, value in enumerate(args):
                label = f"argument {names[i]!r}" if i < len(names) else f"positional argument {i}"
                codec.encode(value, what=f"{label} of {what}", allow_pickle=allow)
            for key, value in kwargs.items():
                codec.encode(value, what=f"argument {key!r} of {what}", allow_pickle=allow)
            raise

    def encode_call(self, signature, args: tuple, kwargs: dict, *, what: str) -> str:
        """Check a call's arguments against ``signature`` and encode them.

        Raises:
            TypeError: the arguments do not fit (``"task fetch(): missing ..."``).
            PayloadError: an argument cannot be stored (naming the argument).
        """
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{what}(): {exc}") from None
        return self.encode_input(args, kwargs, what=what, signature=signature)

    def decode_input(self, text: str) -> tuple[tuple, dict]:
        """Call arguments back from :meth:`encode_input`'s text."""
        value = codec.decode(text, allow_pickle=self.allow_pickle)
        if value is None:
            return (), {}
        return tuple(value.get("args", ())), dict(value.get("kwargs", {}))

    def encode_value(self, value: Any, *, what: str) -> str:
        """A value (a result, a signal's payload) as stored text."""
        return codec.encode(value, what=what, allow_pickle=self.allow_pickle)

    def decode_value(self, text: str | None) -> Any:
        """A value back from its stored text (None stays None)."""
        return None if text is None else codec.decode(text, allow_pickle=self.allow_pickle)

    def payload_field(self, data: dict, key: str) -> Any:
        """Decode an embedded payload field of event data (None when absent)."""
        if key not in data:
            return None
        text = json.dumps(data[key], separators=(",", ":"))
        return codec.decode(text, allow_pickle=self.allow_pickle)


PLAIN = Payloads()
"""For readers without an engine (offline writes, displays): never pickles."""

encode_input = PLAIN.encode_input
encode_call = PLAIN.encode_call
decode_input = PLAIN.decode_input
encode_value = PLAIN.encode_value
decode_value = PLAIN.decode_value
payload_field = PLAIN.payload_field


def _parameter_names(signature, count: int) -> list[str]:
    if signature is None:
        return []
    return [p.name for p in signature.parameters.values()][:count]


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
