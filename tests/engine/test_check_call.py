"""check_call answers exactly as Signature.bind does, whichever path it takes."""

from __future__ import annotations

import inspect

import pytest

from nbconductor.engine.payload import check_call


def f0(): ...
def f1(a): ...
def f2(a, b=1): ...
def f3(a, /, b, c=2): ...
def f4(*args): ...
def f5(a, *args, k): ...
def f6(a, *, k=1): ...
def f7(a, **kwargs): ...
def f8(a=1, b=2): ...


FUNCTIONS = [f0, f1, f2, f3, f4, f5, f6, f7, f8]
CALLS = [((), {}), ((1,), {}), ((1, 2), {}), ((1, 2, 3), {}), ((1,) * 5, {}), ((1,), {"k": 1}),
         ((), {"a": 1}), ((1,), {"b": 2}), ((1,), {"zz": 1})]  # fmt: skip


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda f: f.__name__)
def test_check_call_agrees_with_bind(fn):
    signature = inspect.signature(fn)
    for args, kwargs in CALLS:
        try:
            signature.bind(*args, **kwargs)
            expected = None
        except TypeError as exc:
            expected = str(exc)
        for _ in range(2):  # the first call learns the signature, the second uses it
            try:
                check_call(signature, args, kwargs)
                got = None
            except TypeError as exc:
                got = str(exc)
            assert got == expected, (fn.__name__, args, kwargs)
