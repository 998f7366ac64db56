"""Task code and values as bytes for another process: cloudpickle, with errors that
name the captured variable that cannot travel.

A function defined in a notebook cell lives in ``__main__``, which no other process
can import, so cloudpickle ships it by value, with the globals it uses. A global that
cannot be pickled (a lock, a connection) or is very large is named, so the user knows
which variable to move inside the task or pass as an argument.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import cloudpickle

from nbconductor.errors import DefinitionError

MAX_FUNCTION_BYTES = 10_000_000
"""A pickled task function (with its captured globals) above this is refused: data
that large belongs in the task's arguments or in storage both sides can reach."""


def dumps(value: Any) -> bytes:
    """``value`` as bytes any process with the same modules can load."""
    return cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes) -> Any:
    """A value back from :func:`dumps` (cloudpickle output loads with plain pickle)."""
    return pickle.loads(data)


def _captured(fn: Callable) -> dict[str, Any]:
    """The globals and closure variables ``fn`` refers to, by name."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return {}
    found: dict[str, Any] = {}
    names = set(code.co_names)
    for const in code.co_consts:  # names used by nested functions and comprehensions
        if hasattr(const, "co_names"):
            names.update(const.co_names)
    module_globals = getattr(fn, "__globals__", {})
    for name in names:
        if name in module_globals:
            found[name] = module_globals[name]
    for name, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):
        try:
            found[name] = cell.cell_contents
        except ValueError:  # an empty cell
            continue
    return found


def ship_function(fn: Callable, task_name: str) -> bytes:
    """``fn`` as bytes for another process.

    Raises:
        DefinitionError: ``fn`` or a variable it uses cannot be pickled, or the whole is
            larger than :data:`MAX_FUNCTION_BYTES`; the message names the variable.
    """
    try:
        data = dumps(fn)
    except Exception as exc:
        culprit = None
        for name, value in _captured(fn).items():
            try:
                dumps(value)
            except Exception:
                culprit = name
                break
        what = f"the variable {culprit!r} it uses" if culprit else "its code"
        raise DefinitionError(
            f"task {task_name!r} cannot be sent to another process: {what} cannot be "
            f"pickled ({type(exc).__name__}: {exc}). Create such objects inside the task, "
            "or pass plain values as arguments"
        ) from None
    if len(data) > MAX_FUNCTION_BYTES:
        sizes = {}
        for name, value in _captured(fn).items():
            try:
                sizes[name] = len(dumps(value))
            except Exception:
                continue
        largest = max(sizes, key=sizes.get) if sizes else None
        what = f"; the variable {largest!r} it uses is {sizes[largest]:,} bytes" if largest else ""
        raise DefinitionError(
            f"task {task_name!r} pickles to {len(data):,} bytes, more than the "
            f"{MAX_FUNCTION_BYTES:,} a task may carry{what}. Pass large data as an "
            "argument or load it inside the task"
        )
    return data
