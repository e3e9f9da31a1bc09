"""Reading JSON request bodies: a size limit checked before reading, and one decoding."""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from .json import loads
from .problems import PayloadTooLarge


def read_json(stream, *, declared_length: str | None, limit: int) -> Any:
    """Read a JSON body of at most `limit` bytes from `stream` and decode it.

    The declared Content-Length is checked before anything is read, so an oversized body is
    refused (413) without being read into memory; a body without one is read up to the limit.
    Raises ValueError when the body is not JSON (or the Content-Length is not a number).
    """
    declared = int(declared_length or 0)
    too_large = f"The body may be at most {limit} bytes."
    if declared > limit:
        raise PayloadTooLarge(too_large)
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(too_large)
    return loads(body)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with the project's decoding (apps.core.json.loads): NaN, Infinity and
    bodies nested too deeply are 400s, not 500s. The size limit is Django's: DRF reads
    `request.body`, which refuses more than DATA_UPLOAD_MAX_MEMORY_SIZE (a 413 problem)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return loads(stream.read())
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
