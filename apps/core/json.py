"""The one JSON encoding of the project: API answers, action results, problem details."""

from __future__ import annotations

import base64
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
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
