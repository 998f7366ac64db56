"""What a declared signal carries, so that a view can ask for exactly that.

A workflow declares its signals by name (``signals="approve,cancel"``), or with what
each one carries (``signals={"approve": {"ok": True, "by": "ann"}, "cancel": None}``):

- ``None``: no payload; the view's bare button sends ``None``.
- a type, ``str``, ``int``, ``float``, ``bool``: one value of that type.
- an example value of one of those types: the same, prefilled with the example.
- a dict example (``{"ok": True, "by": "ann"}``) or a class with annotated fields
  (a dataclass, a TypedDict): a form with one field per key; the signal's payload is
  a dict of them.

A signal declared by name only carries any JSON value: the view shows a JSON box and
sends nothing while it is empty (``None`` is a decision the user must type).
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from typing import Any

from nbconductor.errors import DefinitionError

__all__ = ("KINDS", "UNDECLARED", "Field", "SignalPayload", "declared_signals", "parse_kind")

#: The kinds a field (or a whole payload) can have; ``json`` takes any JSON value.
KINDS = ("str", "int", "float", "bool", "json")
_TYPES = {str: "str", int: "int", float: "float", bool: "bool"}


@dataclass(frozen=True)
class Field:
    """One value a signal's form asks for."""

    name: str
    kind: str  # one of KINDS
    default: Any = None  # the example's value (None: empty)


@dataclass(frozen=True)
class SignalPayload:
    """What one signal carries.

    Attributes:
        expects: False when the signal carries nothing (send ``None``).
        fields: the form's fields; empty with ``expects`` for a single value, whose
            kind is ``kind``.
        kind: ``json`` when undeclared, else the single value's kind or ``dict``.
    """

    expects: bool = True
    kind: str = "json"
    fields: tuple[Field, ...] = ()
    default: Any = None

    @property
    def declared(self) -> bool:
        """Whether the workflow said what it carries (else any JSON value)."""
        return not self.expects or self.kind != "json" or bool(self.fields)

    def describe(self) -> str:
        """What is expected, in words: ``nothing``, ``a number``, ``by (text), ok (yes/no)``."""
        if not self.expects:
            return "nothing"
        if self.fields:
            return ", ".join(f"{f.name} ({_WORDS[f.kind]})" for f in self.fields)
        return _WORDS.get(self.kind, "a JSON value")


_WORDS = {
    "str": "text",
    "int": "a whole number",
    "float": "a number",
    "bool": "yes/no",
    "json": "JSON",
}

#: A signal declared by name only.
UNDECLARED = SignalPayload()


def _kind_of_type(annotation: Any) -> str:
    return _TYPES.get(annotation, "json")


def _of(signal: str, spec: Any) -> SignalPayload:
    if spec is None:
        return SignalPayload(expects=False, kind="none")
    if isinstance(spec, SignalPayload):
        return spec
    if isinstance(spec, type) and spec in _TYPES:
        return SignalPayload(kind=_TYPES[spec])
    if isinstance(spec, bool | int | float | str):
        return SignalPayload(kind=_TYPES[type(spec)], default=spec)
    if isinstance(spec, dict):
        if not spec or not all(isinstance(k, str) and k for k in spec):
            raise DefinitionError(
                f"signal {signal!r}: an example payload needs field names (strings) as "
                f'keys, e.g. {{"by": "ann", "ok": True}}; got {spec!r}'
            )
        fields = tuple(
            Field(k, _TYPES.get(type(v), "json"), v)
            if not isinstance(v, type)
            else Field(k, _kind_of_type(v))
            for k, v in spec.items()
        )
        return SignalPayload(kind="dict", fields=fields)
    if isinstance(spec, type):
        try:
            hints = typing.get_type_hints(spec)
        except Exception:  # a forward reference it cannot resolve: use the raw ones
            hints = dict(getattr(spec, "__annotations__", {}))
        if hints:
            return SignalPayload(
                kind="dict", fields=tuple(Field(k, _kind_of_type(v)) for k, v in hints.items())
            )
    raise DefinitionError(
        f"signal {signal!r}: cannot tell what it carries from {spec!r}; give None (nothing), "
        "str, int, float or bool, an example value, a dict example such as "
        '{"by": "ann", "ok": True}, or a dataclass'
    )


def declared_signals(signals: Any) -> tuple[tuple[str, ...], dict[str, SignalPayload]]:
    """The names of ``signals`` (names, ``"a,b"``, or a mapping name -> what it carries)
    and what each carries (only those declared with a payload).

    Raises:
        DefinitionError: a name is empty or a payload cannot be understood.
    """
    if isinstance(signals, str):
        signals = [part.strip() for part in signals.split(",")]
    if isinstance(signals, dict):
        payloads = {str(name): _of(str(name), spec) for name, spec in signals.items()}
        names = tuple(payloads)
    else:
        names, payloads = tuple(signals), {}
    for name in names:
        if not isinstance(name, str) or not name:
            raise DefinitionError(
                f"signal names must be non-empty strings; got {name!r} in {signals!r}"
            )
    return names, payloads


def parse_kind(text: str) -> Any:
    """A payload written in a ``%%workflow`` header: ``none``, a kind name, or a JSON
    example (``{"ok": true, "by": "ann"}``)."""
    word = text.strip()
    if word.lower() == "none":
        return None
    if word in ("str", "int", "float", "bool"):
        return {"str": str, "int": int, "float": float, "bool": bool}[word]
    try:
        return json.loads(word)
    except ValueError:
        raise DefinitionError(
            f"{text!r}: write none, str, int, float, bool or a JSON example such as "
            '{"ok": true, "by": "ann"}'
        ) from None
