"""The one JSON encoding of the project (API answers, action results, problem details), and the
one way request bodies are read as JSON."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from psycopg2.extras import Range


class JSONEncoder(DjangoJSONEncoder):
    """Django's encoder (datetime/date/time as ISO 8601, Decimal and UUID as strings, durations
    as ISO 8601) plus what database rows hold besides: bytes as base64, sets as lists, and
    PostgreSQL ranges as objects."""

    def default(self, o: Any) -> Any:
        if isinstance(o, (bytes, bytearray, memoryview)):
            return base64.b64encode(bytes(o)).decode("ascii")
        if isinstance(o, (set, frozenset)):
            return list(o)
        if isinstance(o, Range):  # int4range, tstzrange, ...
            if o.isempty:
                return {"empty": True}
            return {"lower": o.lower, "upper": o.upper, "bounds": o._bounds}
        return super().default(o)


_encoder = JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(value: Any) -> bytes:
    """Encode to compact UTF-8 JSON bytes."""
    return _encoder.encode(value).encode("utf-8")


def json_response(value: Any, *, status: int = 200) -> HttpResponse:
    """An `application/json` answer in the project's encoding."""
    return HttpResponse(dumps(value), status=status, content_type="application/json")


class NonFinite:
    """A number JSON cannot carry (NaN, Infinity, or one beyond a double's range, which Python
    would read as infinity), kept in its place so that validation names the field it came in."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"NonFinite({self.text!r})"


NON_FINITE_MESSAGE = "Enter a finite number: JSON has no NaN or Infinity."


def loads(data: bytes | str, *, mark_non_finite: bool = False) -> Any:
    """Decode a request body. Raises ValueError for anything that is not plain JSON, including
    nesting deep enough to exhaust the parser (a 100 kB body of `[` would otherwise be a
    RecursionError, a 500). Numbers JSON cannot carry (NaN, Infinity, `1e999999`) raise too, or
    with `mark_non_finite` are read as `NonFinite` for `non_finite_errors` to report per field."""
    if mark_non_finite:
        constant, number = NonFinite, _float_or_mark
    else:
        constant, number = _refuse_constant, _float_or_refuse
    try:
        return json.loads(data, parse_constant=constant, parse_float=number)
    except RecursionError:
        raise ValueError("it is nested too deeply") from None


def non_finite_errors(value: Any) -> Any:
    """Validation errors (DRF's shape: `{"field": ["message"]}`, nested as the input is) for
    every `NonFinite` number in a decoded input; None when there is none."""
    if isinstance(value, NonFinite):
        return [NON_FINITE_MESSAGE]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    errors = {}
    for key, item in items:
        if type(item) is str:  # the common case, checked first
            continue
        found = non_finite_errors(item)
        if found:
            errors[str(key)] = found
    return errors or None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _float_or_refuse(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"{text} is beyond the range of a number")
    return number


def _float_or_mark(text: str) -> float | NonFinite:
    number = float(text)
    return NonFinite(text) if math.isinf(number) else number
