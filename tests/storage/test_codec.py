"""The payload codec: round trips, the tag escape, errors that say where, pickle opt-in."""

from __future__ import annotations

import dataclasses
import decimal
import enum
import json
import math
import subprocess
import sys
import threading
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbconductor.errors import PayloadError
from nbconductor.storage.codec import TAG, decode, encode
from nbconductor.storage.records import Status


class Color(enum.Enum):
    RED = 1
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Point:
    x: int
    y: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class Order:
    id: str
    lines: tuple[Point, ...]
    placed: datetime
    total: decimal.Decimal
    status: Status = Status.RUNNING
    notes: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class WithDerived:
    base: int
    double: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.double = self.base * 2


class Opaque:
    """Not JSON, not a dataclass: only pickle can store it."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.n == self.n

    __hash__ = None  # type: ignore[assignment]


def typed(value: Any) -> Any:
    """A comparable form that also tells 1 from 1.0 from True and a list from a tuple."""
    kind = type(value)
    if kind in (list, tuple):
        return (kind.__name__, [typed(v) for v in value])
    if kind in (set, frozenset):
        return (kind.__name__, sorted(repr(typed(v)) for v in value))
    if kind is dict:
        return ("dict", sorted((repr(typed(k)), repr(typed(v))) for k, v in value.items()))
    if kind is float and math.isnan(value):
        return ("float", "nan")
    if kind is decimal.Decimal and value.is_nan():
        return ("Decimal", str(value))
    if kind in (datetime, time):
        return (kind.__name__, value, str(value.tzinfo), value.fold, value.utcoffset())
    if dataclasses.is_dataclass(value):
        fields = {f.name: typed(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return (kind.__qualname__, repr(fields))
    return (kind.__name__, value)


def assert_round_trip(value: Any, **options: Any) -> str:
    text = encode(value, **options)
    assert text.isascii()
    json.loads(text)  # plain JSON, readable by DuckDB's JSON functions
    assert typed(decode(text, **options)) == typed(value)
    return text


# --- plain JSON ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (True, "true"),
        (7, "7"),
        (2.5, "2.5"),
        ("hé", '"h\\u00e9"'),
        ({"a": [1, {"b": None}]}, '{"a":[1,{"b":null}]}'),
        ([], "[]"),
    ],
)
def test_plain_json_is_stored_as_is(value, text):
    assert encode(value) == text
    assert typed(decode(text)) == typed(value)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text() | st.just(TAG), inner, max_size=5)
    ),
    max_leaves=30,
)


@given(json_values)
def test_json_values_round_trip(value):
    assert_round_trip(value)


# --- tagged types ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        datetime(2025, 3, 14, 15, 9, 26, 535897, tzinfo=UTC),
        datetime(2025, 3, 14, 15, 9, 26, 535897),
        datetime(2025, 3, 14, 15, 9, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
        datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York")),
        datetime(1, 1, 1),
        date(2025, 3, 14),
        time(23, 59, 59, 999999),
        time(8, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        time(8, 0, tzinfo=ZoneInfo("Europe/Paris")),
        timedelta(days=-3, seconds=5, microseconds=7),
        decimal.Decimal("12.340"),
        decimal.Decimal("-1E+30"),
        decimal.Decimal("NaN"),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        b"\x00\xff binary",
        bytearray(b"mutable"),
        (1, "two", (3.0,)),
        (),
        {3, "x", (1, 2)},
        frozenset({1, 2}),
        set(),
        {1: "int key", (1, 2): "tuple key", None: "none key", frozenset({3}): "set key"},
        {True: "bool key", 1.5: "float key"},
        float("nan"),
        float("inf"),
        -float("inf"),
        Status.COMPLETED,
        Color.RED,
        Color.GREEN,
        Level.HIGH,
        Point(1, 2.5),
        Order(
            "A-17",
            (Point(1), Point(2, 3.0)),
            datetime(2025, 1, 1, tzinfo=UTC),
            decimal.Decimal("42.00"),
            notes={TAG: "escaped", "tags": {"a", "b"}},
        ),
        {"nested": [Point(1), {"deep": (Color.RED, Level.LOW)}]},
    ],
    ids=repr,
)
def test_tagged_values_round_trip(value):
    text = assert_round_trip(value)
    assert TAG in text


def test_a_dataclass_is_rebuilt_through_its_constructor():
    got = decode(encode(WithDerived(4)))
    assert (type(got), got.base, got.double) == (WithDerived, 4, 8)


def test_datetimes_keep_their_zone_and_offset():
    paris = datetime(2025, 7, 1, 12, 0, tzinfo=ZoneInfo("Europe/Paris"))
    got = decode(encode(paris))
    assert got.tzinfo == ZoneInfo("Europe/Paris")
    assert got.utcoffset() == timedelta(hours=2)
    utc = decode(encode(datetime(2025, 7, 1, tzinfo=UTC)))
    assert utc.tzinfo is UTC


def test_sets_encode_the_same_whatever_their_order():
    a = {"pear", "apple", "fig", "kiwi"}
    b = set(sorted(a, reverse=True))
    assert encode(a) == encode(b)


def test_strings_with_lone_surrogates_round_trip():
    assert_round_trip({"s": "\ud800 and é"})


hashable = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=5,
)
tagged_leaves = (
    st.datetimes(timezones=st.none() | st.just(UTC) | st.timezones())
    | st.dates()
    | st.times(timezones=st.none() | st.just(UTC))
    | st.timedeltas()
    | st.decimals(allow_nan=False)
    | st.uuids()
    | st.binary(max_size=20)
    | st.floats()
    | st.sampled_from(list(Status) + list(Color) + list(Level))
    | st.builds(Point, st.integers(), st.floats(allow_nan=False))
    | json_scalars
)
tagged_values = st.recursive(
    tagged_leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.sets(hashable, max_size=4)
        | st.frozensets(hashable, max_size=4)
        | st.dictionaries(st.text(max_size=5) | st.just(TAG), inner, max_size=4)
        | st.dictionaries(hashable, inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(tagged_values)
def test_tagged_values_round_trip_property(value):
    assert_round_trip(value)


# --- escape ----------------------------------------------------------------------------


def test_a_dict_holding_the_tag_key_is_escaped():
    tricky = {TAG: "datetime", "v": "2025-01-01T00:00:00"}
    text = assert_round_trip(tricky)
    assert type(decode(text)) is dict
    assert_round_trip([{TAG: "pickle", "v": "gASVAAAA"}])  # never unpickled: it is data
    assert_round_trip({TAG: {TAG: 1}})


def test_a_string_mentioning_the_tag_is_plain():
    assert encode(f"{TAG} is just text") == json.dumps(f"{TAG} is just text")
    assert decode(encode({"k": TAG})) == {"k": TAG}


# --- errors ----------------------------------------------------------------------------


def test_payload_error_names_what_where_and_the_type():
    value = {"rows": [1, 2, 3, {"conn": threading.Lock()}]}
    with pytest.raises(PayloadError) as info:
        encode(value, what="argument 'conn' of task fetch")
    message = str(info.value)
    assert message.startswith("argument 'conn' of task fetch at ['rows'][3]['conn'] ")
    assert "_thread.lock" in message
    assert "convert it to a JSON-friendly value, a dataclass, or opt in to pickle" in message
    assert "allow_pickle=True" in message


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (Opaque(1), ""),
        ((1, Opaque(1)), "[1]"),
        ({"a": Point(1, Opaque(1))}, "['a'].y"),  # type: ignore[arg-type]
        ({5: {"x": Opaque(1)}}, "[5]['x']"),
        ([{1, 2}, {"s": [Opaque(1)]}], "[1]['s'][0]"),
    ],
)
def test_payload_error_paths(value, path):
    with pytest.raises(PayloadError) as info:
        encode(value, what="result of workflow order")
    where = f" at {path}" if path else ""
    assert str(info.value).startswith(f"result of workflow order{where} is a ")
    assert "Opaque" in str(info.value)


def test_subclasses_of_builtins_are_not_silently_changed():
    class Tagged(str):
        pass

    with pytest.raises(PayloadError, match="Tagged"):
        encode({"k": Tagged("x")})


def test_a_class_defined_in_a_function_is_refused_early():
    @dataclasses.dataclass
    class Local:
        x: int

    with pytest.raises(PayloadError, match="module level"):
        encode([Local(1)], what="result")


def test_a_cycle_is_reported_not_recursed():
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(PayloadError, match="contains itself"):
        encode({"loop": loop})


def test_stored_types_that_are_gone_are_reported():
    gone = json.dumps({TAG: "dataclass", "type": "tests_that_do_not_exist:Point", "v": {}})
    with pytest.raises(PayloadError, match="cannot be imported"):
        decode(gone)
    changed = json.dumps({TAG: "dataclass", "type": f"{__name__}:Point", "v": {"z": 1}})
    with pytest.raises(PayloadError, match="definition changed"):
        decode(changed)
    member = json.dumps({TAG: "enum", "type": f"{__name__}:Color", "v": "BLUE"})
    with pytest.raises(PayloadError, match="BLUE"):
        decode(member)


def test_bad_text_and_unknown_tags_are_reported():
    with pytest.raises(PayloadError, match="not valid JSON"):
        decode("{not json")
    with pytest.raises(PayloadError, match="newer nbconductor"):
        decode(json.dumps({TAG: "hologram", "v": 1}))


# --- pickle ----------------------------------------------------------------------------


def test_pickle_is_opt_in_on_both_sides():
    value = {"thing": Opaque(3)}
    text = encode(value, allow_pickle=True)
    assert json.loads(text)["thing"][TAG] == "pickle"
    with pytest.raises(PayloadError, match="allow_pickle=True") as info:
        decode(text)
    assert "Opaque" in str(info.value)
    assert decode(text, allow_pickle=True) == value


def test_known_types_are_not_pickled_even_when_allowed():
    text = encode((1, Point(2)), allow_pickle=True)
    assert "pickle" not in text
    assert decode(text) == (1, Point(2))


def test_an_unpicklable_object_is_reported_with_its_path():
    with pytest.raises(PayloadError, match=r"at \['lock'\] .*cannot be pickled"):
        encode({"lock": threading.Lock()}, allow_pickle=True)


# --- data frames (optional libraries) --------------------------------------------------


def test_pandas_data_frames_round_trip():
    pd = pytest.importorskip("pandas", reason="pandas is not installed (an optional extra)")
    pytest.importorskip("pyarrow", reason="pyarrow is not installed (needed for pandas frames)")
    frame = pd.DataFrame(
        {"id": [1, 2], "name": ["a", "é"], "at": pd.to_datetime(["2025-01-01", "2025-01-02"])}
    )
    got = decode(encode({"frame": frame}))["frame"]
    pd.testing.assert_frame_equal(got, frame)


def test_polars_data_frames_round_trip():
    pl = pytest.importorskip("polars", reason="polars is not installed (an optional extra)")
    frame = pl.DataFrame({"id": [1, 2], "name": ["a", "é"]})
    got = decode(encode([frame]))[0]
    assert isinstance(got, pl.DataFrame)
    assert got.equals(frame)


def test_arrow_tables_round_trip():
    pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed (an optional extra)")
    table = pa.table({"id": [1, 2], "name": ["a", None]})
    got = decode(encode((table,)))[0]
    assert isinstance(got, pa.Table)
    assert got.equals(table)


def test_the_codec_imports_no_data_frame_library():
    code = (
        "import sys, datetime\n"
        "from nbconductor.storage import codec\n"
        "codec.decode(codec.encode({'t': (1, datetime.date(2025, 1, 1))}))\n"
        "print(sorted({'pandas', 'polars', 'pyarrow', 'numpy'} & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
