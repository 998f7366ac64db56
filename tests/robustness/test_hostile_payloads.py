"""A history file is input: decoding it imports nothing and runs no code it names."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap

import pytest

import nbconductor as nc
from nbconductor.engine.engine import Engine
from nbconductor.errors import PayloadError
from nbconductor.storage.codec import TAG, decode, encode


@pytest.mark.parametrize("tag", ["enum", "dataclass"])
def test_a_tag_naming_an_unloaded_module_does_not_import_it(tag):
    # In a fresh interpreter, so that no other test has imported the module.
    code = textwrap.dedent(
        f"""
        import json, sys
        from nbconductor.storage.codec import TAG, decode
        from nbconductor.errors import PayloadError
        crafted = json.dumps({{TAG: {tag!r}, "type": "this:s", "v": {{}}}})
        try:
            decode(crafted)
        except PayloadError as exc:
            print("refused:", exc)
        print("imported" if "this" in sys.modules else "not imported")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "not imported" in out
    assert "imports no module that a history file names" in out
    assert "Zen of Python" not in out


class Payload:  # a loaded class that is not a dataclass: its constructor must not run
    calls = 0

    def __init__(self, **kwargs):
        Payload.calls += 1


def test_a_tag_naming_a_loaded_class_that_is_no_dataclass_is_refused():
    crafted = json.dumps({TAG: "dataclass", "type": f"{__name__}:Payload", "v": {}})
    with pytest.raises(PayloadError, match="not one"):
        decode(crafted)
    assert Payload.calls == 0
    os_system = json.dumps({TAG: "dataclass", "type": "os:system", "v": {}})
    with pytest.raises(PayloadError, match="not one"):
        decode(os_system)
    enum_call = json.dumps({TAG: "enum", "type": "subprocess:Popen", "v": "x"})
    with pytest.raises(PayloadError, match="not one"):
        decode(enum_call)


@dataclasses.dataclass
class Point:
    x: int


def test_types_this_process_stored_or_allowed_decode():
    assert decode(encode(Point(1))) == Point(1)
    text = json.dumps({TAG: "dataclass", "type": "json.decoder:Nothing", "v": {}})
    with pytest.raises(PayloadError):
        decode(text)
    with pytest.raises(TypeError, match="allow_types"):
        nc.allow_types(42)


def _pickled_history(tmp_path) -> str:
    """A history file holding a pickled value whose unpickling would leave a mark."""
    path = tmp_path / "other.duckdb"
    code = textwrap.dedent(
        f"""
        import nbconductor as nc
        from nbconductor.engine.engine import Engine

        class Opaque:
            pass

        @nc.workflow
        async def keeps() -> object:
            return Opaque()

        eng = Engine({str(path)!r}, allow_pickle=True, make_default=False)
        eng.start(keeps, id="p").result(timeout=30)
        eng.stop(grace=0)
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    return str(path)


def test_allow_pickle_is_per_engine_and_per_file(tmp_path):
    other = _pickled_history(tmp_path)
    trusting = Engine(tmp_path / "trusted.duckdb", allow_pickle=True, make_default=False)
    try:
        careful = Engine(other, make_default=False)
        try:
            # The pickled result of the other file is refused even though an engine of
            # this process allows pickle for its own file.
            with pytest.raises(PayloadError, match="allow_pickle=True"):
                careful.get("p").result(timeout=10)
        finally:
            careful.stop(grace=0)
    finally:
        trusting.stop(grace=0)
