"""The one JSON encoding of the project (API answers, action results, problem details), and the
one way request bodies are read as JSON."""

from __future__ import annotations

import base64
import json
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


def loads(data: bytes | str) -> Any:
    """Decode a request body. Raises ValueError for anything that is not plain JSON, including
    NaN and Infinity (not JSON) and nesting deep enough to exhaust the parser (a 100 kB body of
    `[` would otherwise be a RecursionError, a 500)."""
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("it is nested too deeply") from None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")
