"""The id of the request being served, shared by the middleware, the logs and outgoing calls."""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator
from contextvars import ContextVar, Token

_current: ContextVar[str | None] = ContextVar("request_id", default=None)

# Where the id travels: the HTTP header (in and out), its WSGI environ key, and its key in gRPC
# metadata (where keys are lower case).
HEADER = "X-Request-ID"
META_KEY = "HTTP_X_REQUEST_ID"
METADATA_KEY = "x-request-id"

# What a client may send: short, printable, no spaces or separators that could split a log line.
_SANE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def new_request_id() -> str:
    """128 random bits as 32 hex digits, the shape of a UUID's hex."""
    return secrets.token_hex(16)


def sanitize(candidate: str | None) -> str:
    """Keep a sane client-supplied id; otherwise make a new one."""
    if candidate and _SANE.fullmatch(candidate):
        return candidate
    return new_request_id()


@contextlib.contextmanager
def request_id_scope(candidate: str | None) -> Iterator[str]:
    """Serve one request or call with an id (the sane `candidate`, else a new one) that every log
    line and outgoing call inside the block carries; yields the id."""
    request_id, token = enter(candidate)
    try:
        yield request_id
    finally:
        leave(token)


def enter(candidate: str | None) -> tuple[str, Token]:
    """Make the sane `candidate` (else a new id) the current one; returns it and the token that
    `leave` restores the previous one with (for a scope that does more than this one)."""
    request_id = sanitize(candidate)
    return request_id, _current.set(request_id)


def leave(token: Token) -> None:
    _current.reset(token)


def get_request_id() -> str | None:
    return _current.get()
