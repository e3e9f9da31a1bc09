"""JSON values to and from `google.protobuf.Value` / `Struct`, for the server and the client.

Walking the message directly costs a fraction of what `json_format` does, and gives
integral numbers back as ints: a protobuf number is a double, and `{"id": 7}` should not come
back as `{"id": 7.0}`. JSON's types go in as `json.dumps` takes them (dict, list, tuple, str,
int, float, bool, None, and their subclasses; keys that are numbers, booleans or None become
strings); anything else goes through `default`, as with a JSONEncoder, so that the server fills
a result's message straight from the action's objects (datetimes, Decimals, UUIDs…) with the
same values the HTTP API's JSON holds. Needs no Django, so that the client runs anywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from google.protobuf.struct_pb2 import NULL_VALUE, Struct, Value

Default = Callable[[Any], Any]


def _not_json(data: Any) -> Any:
    raise TypeError(f"{type(data).__name__} is not a JSON type")


def to_value(data: Any, *, default: Default = _not_json) -> Value:
    """A Value holding a JSON value."""
    value = Value()
    fill_value(value, data, default=default)
    return value


def to_struct(data: dict[str, Any], *, default: Default = _not_json) -> Struct:
    """A Struct holding a JSON object."""
    struct = Struct()
    _fill_fields(struct.fields, data, default)
    return struct


def fill_value(value: Value, data: Any, *, default: Default = _not_json) -> None:
    """Set `value` (a new Value, e.g. a reply's field) to hold `data`.

    `default(obj)` turns an object of another type into one that JSON has, as
    `json.JSONEncoder.default` does; the server passes the project encoder's.
    """
    _fill(value, data, default)


def from_value(value: Value, *, non_finite: Callable[[str], Any] | None = None) -> Any:
    """The JSON value a Value holds; integral numbers as ints. A NaN or an infinity (which a
    double holds and JSON does not) is given to `non_finite`, when given, to stand in for it."""
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return from_struct(value.struct_value, non_finite=non_finite)
    if kind == "list_value":
        return [from_value(item, non_finite=non_finite) for item in value.list_value.values]
    if kind == "number_value":
        number = value.number_value
        if number.is_integer():
            return int(number)
        if non_finite is not None and not math.isfinite(number):
            return non_finite(repr(number))
        return number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    return None  # null_value, or a Value with nothing set


def from_struct(
    struct: Struct, *, non_finite: Callable[[str], Any] | None = None
) -> dict[str, Any]:
    """The JSON object a Struct holds."""
    return {key: from_value(item, non_finite=non_finite) for key, item in struct.fields.items()}


def _fill(value: Value, data: Any, default: Default) -> None:
    # The checks json.dumps makes, in its order; exact types first, as they are most values.
    kind = type(data)
    if kind is str:
        value.string_value = data
    elif data is None:
        value.null_value = NULL_VALUE
    elif kind is bool:  # before int: bool is an int
        value.bool_value = data
    elif kind is int or kind is float:
        value.number_value = data
    elif kind is dict:
        struct = value.struct_value
        struct.SetInParent()  # an empty object is still an object
        _fill_fields(struct.fields, data, default)
    elif kind is list or kind is tuple:
        _fill_list(value, data, default)
    # Subclasses are written as their base type's value, never through their own methods.
    elif isinstance(data, str):
        value.string_value = str.__str__(data)
    elif isinstance(data, int):  # IntEnum and the like
        value.number_value = int.__int__(data)
    elif isinstance(data, float):
        value.number_value = float.__float__(data)
    elif isinstance(data, list | tuple):
        _fill_list(value, data, default)
    elif isinstance(data, dict):
        struct = value.struct_value
        struct.SetInParent()
        _fill_fields(struct.fields, data, default)
    else:
        _fill(value, default(data), default)


def _fill_list(value: Value, data: list | tuple, default: Default) -> None:
    values = value.list_value.values
    value.list_value.SetInParent()  # an empty array is still an array
    for item in data:
        _fill(values.add(), item, default)


def _fill_fields(fields: Any, data: dict, default: Default) -> None:
    converted = False
    for key, item in data.items():
        if type(key) is not str:
            key = _json_key(key)
            converted = True
        if converted and key in fields:  # {"1": …, 1: …}: JSON keeps the last one, whole
            del fields[key]
        _fill(fields[key], item, default)


def _json_key(key: Any) -> str:
    """A key as json.dumps writes it: numbers, booleans and None become strings."""
    if isinstance(key, str):
        return str.__str__(key)
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, float):
        if math.isfinite(key):
            return float.__repr__(key)
        return "NaN" if math.isnan(key) else "Infinity" if key > 0 else "-Infinity"
    if isinstance(key, int):
        return int.__repr__(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
