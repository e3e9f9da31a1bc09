"""JSON log lines for ELK: timestamp, level, logger, message and the request id on every record."""

from __future__ import annotations

import logging

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from .request_id import get_request_id

# Attributes Django puts on its records that are objects, not data (sockets, requests).
_NOT_DATA = ("request", "server_time")


class RequestIdFilter(logging.Filter):
    """Stamp the current request id on each record (None outside a request).

    Django logs a response after the middleware is done with it, so for its records the id is
    taken from the request they carry.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            request = getattr(record, "request", None)
            record.request_id = getattr(request, "id", None) or get_request_id()
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object per line with stable field names."""

    def __init__(self, **kwargs):
        kwargs.setdefault("fmt", ["levelname", "name", "message"])
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, *_NOT_DATA])
        kwargs.setdefault("timestamp", True)  # ISO 8601, UTC
        super().__init__(**kwargs)
