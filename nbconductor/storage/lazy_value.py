"""A stored value that workflow code receives before it is loaded.

Workflow code often only passes a large value on (``frame = await make()`` then
``await summarize(frame)``). Replaying such code must not read the frame from the
history file, and passing it on must not hash or store it again. So a stored frame,
table or array reaches workflow code as a :class:`LazyValue`: it stands for the value
and loads it on first use — any attribute, operator, ``len()``, iteration, ``repr()``
or conversion — and then forwards everything to it. ``isinstance(value,
pandas.DataFrame)`` is true without loading (the class is known from the reference).
The codec stores a LazyValue as its reference again, loaded or not.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

__all__ = ("LazyValue", "unwrap")

_UNSET = object()


class LazyValue:
    """Stands for a stored value; loads it on first use (see the module docstring)."""

    __slots__ = ("__weakref__", "_nbc_cls", "_nbc_load", "_nbc_ref", "_nbc_value")

    def __init__(self, ref: dict[str, Any], cls: type, load: Callable[[], Any]) -> None:
        object.__setattr__(self, "_nbc_ref", ref)
        object.__setattr__(self, "_nbc_cls", cls)
        object.__setattr__(self, "_nbc_load", load)
        object.__setattr__(self, "_nbc_value", _UNSET)

    def _nbc_get(self) -> Any:
        value = object.__getattribute__(self, "_nbc_value")
        if value is _UNSET:
            value = object.__getattribute__(self, "_nbc_load")()
            object.__setattr__(self, "_nbc_value", value)
        return value

    @property
    def _nbc_loaded(self) -> bool:
        return object.__getattribute__(self, "_nbc_value") is not _UNSET

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance() without loading
        return object.__getattribute__(self, "_nbc_cls")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._nbc_get(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._nbc_get(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._nbc_get(), name)

    def __dir__(self) -> list[str]:
        return dir(self._nbc_get())

    def __repr__(self) -> str:
        return repr(self._nbc_get())

    def __str__(self) -> str:
        return str(self._nbc_get())

    def __format__(self, spec: str) -> str:
        return format(self._nbc_get(), spec)

    def __bool__(self) -> bool:
        return bool(self._nbc_get())

    def __len__(self) -> int:
        return len(self._nbc_get())

    def __iter__(self) -> Any:
        return iter(self._nbc_get())

    def __reversed__(self) -> Any:
        return reversed(self._nbc_get())

    def __contains__(self, item: Any) -> bool:
        return item in self._nbc_get()

    def __getitem__(self, key: Any) -> Any:
        return self._nbc_get()[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._nbc_get()[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._nbc_get()[key]

    def __hash__(self) -> int:
        return hash(self._nbc_get())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._nbc_get()(*args, **kwargs)

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        return self._nbc_get().__array__(*args, **kwargs)

    def __arrow_c_stream__(self, *args: Any, **kwargs: Any) -> Any:
        return self._nbc_get().__arrow_c_stream__(*args, **kwargs)

    def __dataframe__(self, *args: Any, **kwargs: Any) -> Any:
        return self._nbc_get().__dataframe__(*args, **kwargs)

    def __copy__(self) -> Any:
        import copy

        return copy.copy(self._nbc_get())

    def __deepcopy__(self, memo: dict) -> Any:
        import copy

        return copy.deepcopy(self._nbc_get(), memo)

    def __reduce_ex__(self, protocol: int) -> Any:
        return self._nbc_get().__reduce_ex__(protocol)


def _forward(name: str, op: Callable[..., Any]) -> Callable[..., Any]:
    def method(self: LazyValue, *args: Any) -> Any:
        return op(self._nbc_get(), *(unwrap(a) for a in args))

    method.__name__ = name
    return method


def _reflected(name: str, op: Callable[..., Any]) -> Callable[..., Any]:
    def method(self: LazyValue, other: Any) -> Any:
        return op(unwrap(other), self._nbc_get())

    method.__name__ = name
    return method


_BINARY = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "matmul": operator.matmul,
    "truediv": operator.truediv,
    "floordiv": operator.floordiv,
    "mod": operator.mod,
    "pow": operator.pow,
    "and": operator.and_,
    "or": operator.or_,
    "xor": operator.xor,
    "lshift": operator.lshift,
    "rshift": operator.rshift,
}
for _name, _op in _BINARY.items():
    setattr(LazyValue, f"__{_name}__", _forward(f"__{_name}__", _op))
    setattr(LazyValue, f"__r{_name}__", _reflected(f"__r{_name}__", _op))
for _name, _op in {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "neg": operator.neg,
    "pos": operator.pos,
    "abs": operator.abs,
    "invert": operator.invert,
}.items():
    setattr(LazyValue, f"__{_name}__", _forward(f"__{_name}__", _op))


def unwrap(value: Any) -> Any:
    """The loaded value behind a LazyValue (loading it), or ``value`` itself."""
    if type(value) is LazyValue:
        return value._nbc_get()
    return value
