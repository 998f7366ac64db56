"""Checking a call's arguments against a task's or workflow's signature, quickly.

``inspect.Signature.bind`` costs ~8 us, paid on every task call and again for every
recorded call a replay re-runs (10,000 awaits: 80 ms). Most calls are positional
arguments to plain parameters, which a count settles; anything else goes to ``bind``,
whose message is the one users see.
"""

from __future__ import annotations

import inspect
from typing import Any

_PLAIN = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)

# id(signature) -> (signature, (required, total) or None when only bind() can tell).
# The signature is kept in the value so that a reused id is never mistaken for it.
_shapes: dict[int, tuple[inspect.Signature, tuple[int, int] | None]] = {}
_MAX_SHAPES = 4096  # definitions are few; cleared if a notebook redefines thousands


def _shape(signature: inspect.Signature) -> tuple[int, int] | None:
    entry = _shapes.get(id(signature))
    if entry is not None and entry[0] is signature:
        return entry[1]
    params = list(signature.parameters.values())
    shape = None
    if all(p.kind in _PLAIN for p in params):
        required = sum(1 for p in params if p.default is inspect.Parameter.empty)
        shape = (required, len(params))
    if len(_shapes) >= _MAX_SHAPES:
        _shapes.clear()
    _shapes[id(signature)] = (signature, shape)
    return shape


def check_call(
    signature: inspect.Signature, args: tuple, kwargs: dict[str, Any], what: str
) -> None:
    """Raise TypeError (``"task fetch(): missing a required argument: 'url'"``) unless
    ``args`` and ``kwargs`` fit ``signature``."""
    if not kwargs:
        shape = _shape(signature)
        if shape is not None and shape[0] <= len(args) <= shape[1]:
            return
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{what}(): {exc}") from None
