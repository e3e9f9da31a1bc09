"""JSON values to and from `google.protobuf.Value` / `Struct`, for the server and the client.

Walking the message directly is about three times faster than `json_format`, and gives
integral numbers back as ints: a protobuf number is a double, and `{"id": 7}` should not come
back as `{"id": 7.0}`. Only JSON's types go in (dict, list, str, int, float, bool, None): the
server encodes results with apps.core.json first, so that they are what the HTTP API answers.
Needs no Django, so that the client runs anywhere.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.struct_pb2 import NULL_VALUE, Struct, Value


def to_value(data: Any) -> Value:
    """A Value holding a JSON value."""
    value = Value()
    _fill(value, data)
    return value


def to_struct(data: dict[str, Any]) -> Struct:
    """A Struct holding a JSON object."""
    struct = Struct()
    for key, item in data.items():
        _fill(struct.fields[key], item)
    return struct


def from_value(value: Value) -> Any:
    """The JSON value a Value holds; integral numbers as ints."""
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return from_struct(value.struct_value)
    if kind == "list_value":
        return [from_value(item) for item in value.list_value.values]
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    return None  # null_value, or a Value with nothing set


def from_struct(struct: Struct) -> dict[str, Any]:
    """The JSON object a Struct holds."""
    return {key: from_value(item) for key, item in struct.fields.items()}


def _fill(value: Value, data: Any) -> None:
    if data is None:
        value.null_value = NULL_VALUE
    elif isinstance(data, bool):  # before int: bool is an int
        value.bool_value = data
    elif isinstance(data, int | float):
        value.number_value = data
    elif isinstance(data, str):
        value.string_value = data
    elif isinstance(data, dict):
        fields = value.struct_value.fields
        value.struct_value.SetInParent()  # an empty object is still an object
        for key, item in data.items():
            _fill(fields[key], item)
    elif isinstance(data, list | tuple):
        values = value.list_value.values
        value.list_value.SetInParent()
        for item in data:
            _fill(values.add(), item)
    else:
        raise TypeError(f"{type(data).__name__} is not a JSON type")
