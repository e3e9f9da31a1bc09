"""JSON log lines for ELK: timestamp, level, logger, message and the request id on every record."""

from __future__ import annotations

import functools
import logging
import re

from django.conf import settings
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from . import tracing
from .request_id import get_request_id

# Attributes Django puts on its records that are objects, not data (sockets, requests).
_NOT_DATA = ("request", "server_time")


class RequestIdFilter(logging.Filter):
    """Stamp the current request id on each record (None outside a request), and the current
    span's `trace_id` and `span_id` when tracing is on and the record is written inside one.

    Django logs a response after the middleware is done with it, so for its records the id is
    taken from the request they carry.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            request = getattr(record, "request", None)
            record.request_id = getattr(request, "id", None) or get_request_id()
        if tracing.is_on() and not hasattr(record, "trace_id"):
            record.__dict__.update(tracing.log_fields())
        return True


# Where a masked path ends: the end of the text, or a request line's protocol (`… HTTP/1.1"`),
# which is kept. Nothing else ends it: once decoded, a secret may hold spaces, tabs, slashes,
# quotes or newlines.
_MASK_ENDS = r"(?=\s+HTTP/\d(?:\.\d)?(?:[\"\s]|\Z)|\Z)"


@functools.cache
def _secret_paths() -> re.Pattern[str]:
    prefixes = "|".join(_any_encoding(prefix) for prefix in settings.LOG_MASKED_PATH_PREFIXES)
    if not prefixes:
        return re.compile(r"(?!)")
    return re.compile(rf"({prefixes}).+?{_MASK_ENDS}", re.DOTALL)


def _any_encoding(prefix: str) -> str:
    """A pattern for `prefix` as written or with any of its characters percent-encoded (as a
    raw request line quotes it: `/api/v1/otp/%63heck/`), which the server decodes alike."""
    return "".join(f"(?:{re.escape(char)}|{_percent_encoded(char)})" for char in prefix)


def _percent_encoded(char: str) -> str:
    """`%2F` or `%2f` for "/": the character's UTF-8 bytes as %XX, hex digits in either case."""
    return "".join(
        "%" + "".join(f"[{d}{d.lower()}]" if d.isalpha() else d for d in f"{byte:02X}")
        for byte in char.encode()
    )


def mask_secret_paths(text: str) -> str:
    """Replace everything after a prefix that carries a secret (LOG_MASKED_PATH_PREFIXES) with
    `[masked]`, in a decoded path or a raw one."""
    if not settings.configured:  # gunicorn's master before Django: it serves no request
        return text
    pattern = _secret_paths()
    if pattern.search(text) is None:  # every access line asks: one scan, no substitution set up
        return text
    return pattern.sub(r"\1[masked]", text)


class SecretPathFilter(logging.Filter):
    """Mask secrets carried in URL paths wherever a record quotes a path.

    The original mobile client sends a one-time code in the path (`GET /api/v1/otp/check/<code>`);
    Django's request and server loggers quote the path in their messages.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                mask_secret_paths(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        elif isinstance(record.msg, str) and not record.args:
            record.msg = mask_secret_paths(record.msg)
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object per line with stable field names."""

    def __init__(self, **kwargs):
        kwargs.setdefault("fmt", ["levelname", "name", "message"])
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, *_NOT_DATA])
        kwargs.setdefault("timestamp", True)  # ISO 8601, UTC
        super().__init__(**kwargs)
