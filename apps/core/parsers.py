"""DRF's JSON parser on the project's one JSON decoding."""

from __future__ import annotations

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from .json import loads


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with the project's decoding (apps.core.json.loads): NaN, Infinity and
    bodies nested too deeply are 400s, not 500s. The size limit is Django's: DRF reads
    `request.body`, which refuses more than DATA_UPLOAD_MAX_MEMORY_SIZE (a 413 problem)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return loads(stream.read())
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
