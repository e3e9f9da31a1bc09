"""The id of the request being served, shared by the middleware, the logs and outgoing calls."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

_current: ContextVar[str | None] = ContextVar("request_id", default=None)

# The request id's key in gRPC metadata (where keys are lower case); X-Request-ID over HTTP.
METADATA_KEY = "x-request-id"

# What a client may send: short, printable, no spaces or separators that could split a log line.
_SANE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def new_request_id() -> str:
    return uuid.uuid4().hex


def sanitize(candidate: str | None) -> str:
    """Keep a sane client-supplied id; otherwise make a new one."""
    if candidate and _SANE.fullmatch(candidate):
        return candidate
    return new_request_id()


def get_request_id() -> str | None:
    return _current.get()


def set_request_id(value: str | None):
    """Set the current id; returns a token for `reset_request_id`."""
    return _current.set(value)


def reset_request_id(token) -> None:
    _current.reset(token)
