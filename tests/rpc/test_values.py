"""Results are put into their messages straight from the action's objects: the message must be
the one the HTTP API's JSON text would give, value for value, whatever the result holds."""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import uuid
from collections import OrderedDict

import pytest
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy
from psycopg2.extras import DateTimeTZRange, NumericRange
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from apps.core.json import JSONEncoder, dumps
from apps.rpc.values import from_value, to_value

DEFAULT = JSONEncoder().default
UTC = datetime.UTC


class Level(enum.IntEnum):
    HIGH = 3


class Ratio(float):
    def __repr__(self) -> str:
        return "not a number"


RESULTS = {
    "scalars": {"name": "ana", "n": 7, "ratio": 1.5, "yes": True, "no": False, "nothing": None},
    "nested": {"rows": [{"id": 1, "tags": ["a", "b"]}, {"id": 2, "tags": []}], "empty": {}},
    "list": [1, "two", 3.0, None, [], {}],
    "scalar": "just a string",
    "datetimes": {
        "ts": datetime.datetime(2026, 11, 26, 10, 30, 0, 123456, tzinfo=UTC),
        "naive": datetime.datetime(2026, 11, 26, 10, 30),
        "day": datetime.date(2026, 11, 26),
        "clock": datetime.time(12, 30, 15, 500),
        "span": datetime.timedelta(days=1, hours=2),
    },
    "database types": {
        "big": decimal.Decimal("12345678901234567890.000000001"),
        "id": uuid.UUID("a8098c1a-f86e-11da-bd1a-00112444be1e"),
        "raw": b"\x00\xff\x10",
        "array": bytearray(b"ab"),
        "view": memoryview(b"cd"),
        "range": NumericRange(1, 5),
        "empty range": NumericRange(empty=True),
        "time range": DateTimeTZRange(datetime.datetime(2026, 1, 1, tzinfo=UTC), None),
        "set": {3},
        "frozen": frozenset({"x"}),
    },
    "containers": {
        "tuple": (1, "a", (2,)),
        "ordered": OrderedDict([("b", 1), ("a", 2)]),
        "drf dict": ReturnDict({"id": 1}, serializer=None),
        "drf list": ReturnList([{"id": 1}], serializer=None),
    },
    "subclasses": {
        "enum": Level.HIGH,
        "safe": mark_safe("<b>"),
        "ratio": Ratio(2.5),
        "lazy": gettext_lazy("This field is required."),
    },
    "numbers": [0, -1, 2**53 + 1, 2**70, 1e300, -0.0, float("nan"), float("inf"), float("-inf")],
    "keys": {7: "int", 2.5: "float", True: "true", False: "false", None: "null", "s": "str"},
    "special float keys": {float("nan"): 1, float("inf"): 2, float("-inf"): 3},
    "colliding keys, text first": {"1": [1, 1], 1: [2]},
    "colliding keys, number first": {1: {"a": 1}, "1": {"b": 2}},
    "unicode": {"ça": "naïve ☃", "emoji": "🙂"},
}


def encoded_as_over_http(result) -> bytes:
    """The message the JSON text of the HTTP API gives: the encoding this must match."""
    return to_value(json.loads(dumps(result))).SerializeToString(deterministic=True)


@pytest.mark.parametrize("result", RESULTS.values(), ids=RESULTS.keys())
def test_a_result_gives_the_message_its_json_gives(result):
    encoded = to_value(result, default=DEFAULT).SerializeToString(deterministic=True)
    assert encoded == encoded_as_over_http(result)


def test_integral_numbers_come_back_as_ints():
    assert from_value(to_value({"id": 7, "ratio": 0.5})) == {"id": 7, "ratio": 0.5}


@pytest.mark.parametrize(
    "result", [object(), {"a": [object()]}, {(1, 2): "tuple key"}], ids=["object", "nested", "key"]
)
def test_what_json_cannot_encode_fails_the_same_way(result):
    with pytest.raises(TypeError):
        dumps(result)
    with pytest.raises(TypeError):
        to_value(result, default=DEFAULT)


def test_without_a_default_only_json_types_go_in():
    with pytest.raises(TypeError):
        to_value({"when": datetime.date(2026, 11, 26)})
