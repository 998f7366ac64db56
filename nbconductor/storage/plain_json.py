"""Plain JSON, fast: compact ASCII text of values known to be plain JSON, and reading
compact text back, for the hot paths of the codec and the engine (task inputs, results,
event data). They give what ``json.dumps(value, separators=(",", ":"))`` and
``json.loads`` give, without their per-call overhead.
"""

from __future__ import annotations

import json
import json.scanner
from collections.abc import Callable
from typing import Any

__all__ = ("COMPACT", "dumps_plain", "loads_plain")

#: One shared compact encoder: json.dumps builds a new one per call when given options.
COMPACT = json.JSONEncoder(separators=(",", ":"))


def _plain_encoder() -> Callable[[Any], str]:
    # JSONEncoder.encode still makes json's C encoder anew on every call (~3 of the
    # ~4 us a small value costs); one made once serves values known to be plain JSON
    # and acyclic. Without circular checks it keeps no state, so threads may share it.
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return COMPACT.encode
    try:
        chunks = make(
            None, COMPACT.default, json.encoder.encode_basestring_ascii, None, ":", ",",
            False, False, True,
        )  # fmt: skip
        if "".join(chunks({"a": [1, 2.5, "é", None, True]}, 0)) != (
            '{"a":[1,2.5,"\\u00e9",null,true]}'
        ):
            return COMPACT.encode
    except Exception:  # another Python's C encoder: the plain way, then
        return COMPACT.encode
    return lambda value: "".join(chunks(value, 0))


dumps_plain = _plain_encoder()
"""Compact ASCII JSON of a value that is plain JSON (dicts with str keys, lists, str,
int, finite float, bool, None) and holds no cycle, as ``COMPACT.encode`` gives it."""


def _plain_decoder() -> Callable[[str], Any]:
    # json.loads spends ~2 of the ~2.3 us a small text costs outside its C scanner
    # (argument checks, JSONDecoder.decode, two whitespace regex matches); results,
    # inputs and event data are compact JSON, which the scanner alone reads.
    make = getattr(json.scanner, "c_make_scanner", None)
    if make is None:
        return json.loads
    scan = make(json.JSONDecoder())
    loads = json.loads

    def load(text: str) -> Any:
        try:
            value, end = scan(text, 0)
        except StopIteration:  # leading whitespace, or not JSON: json says which
            return loads(text)
        if end != len(text):  # trailing whitespace or text: likewise
            return loads(text)
        return value

    return load


loads_plain = _plain_decoder()
"""``json.loads`` without hooks, faster on compact text (the same value or error)."""
