"""Action calls over HTTP: decode the request into an `ActionCall`, encode what the pipeline
answers. Shared by the Django views (`views.py`) and the WSGI fast path (`wsgi.py`), which both
work from the WSGI environ, so the two answer alike by construction."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings

from apps.core.json import dumps, loads
from apps.core.problems import PayloadTooLarge, document_for_exception
from apps.core.request_id import get_request_id, request_id_scope
from apps.core.wsgi import Answer, Environ

from . import pipeline
from .exceptions import MalformedInput, MethodNotAllowed, UnsupportedMediaType

JSON = "application/json"
NDJSON = "application/x-ndjson"
# Rows are sent in pieces: one write per row would cost more than the row. A piece goes out when
# it holds this many bytes, or when its first row has waited this long (slow rows go one by one).
STREAM_PIECE = 64 * 1024
STREAM_WAIT = 0.05


def serve(environ: Environ, *, module: str, action: str) -> Answer:
    """Answer `POST /actions/<module>/<action>` (or the module's ping, when `action` is empty)."""
    try:
        if environ["REQUEST_METHOD"] != "POST":
            raise MethodNotAllowed()
        call = pipeline.ActionCall(
            authorization=environ.get("HTTP_AUTHORIZATION"),
            module=module,
            action=action,
            decode=lambda: read_json_object(environ),
            options=options(environ),
        )
        if not action:
            return encode(pipeline.ping(call))
        if NDJSON in environ.get("HTTP_ACCEPT", ""):
            rows, headers = pipeline.stream(call)
            return ndjson(rows, headers)
        return encode(pipeline.perform(call))
    except Exception as exc:
        return Answer.for_exception(exc)


def serve_batch(environ: Environ) -> Answer:
    """Answer `POST /actions/batch`."""
    try:
        if environ["REQUEST_METHOD"] != "POST":
            raise MethodNotAllowed()
        call = pipeline.BatchCall(
            authorization=environ.get("HTTP_AUTHORIZATION"),
            decode=lambda: read_json_object(environ),
            options=options(environ),
        )
        return encode(pipeline.perform_batch(call))
    except Exception as exc:
        return Answer.for_exception(exc)


def options(environ: Environ) -> pipeline.CallOptions:
    """What the headers ask of the call: an Idempotency-Key, a dry run (`Prefer: tx=rollback`)."""
    return pipeline.CallOptions(
        idempotency_key=environ.get("HTTP_IDEMPOTENCY_KEY"),
        dry_run="tx=rollback" in preferences(environ.get("HTTP_PREFER", "")),
    )


def preferences(header: str) -> set[str]:
    """The preferences of a `Prefer` header (RFC 7240), lower-cased, without parameters."""
    return {part.split(";", 1)[0].strip().lower() for part in header.split(",") if part.strip()}


def encode(outcome: pipeline.Outcome) -> Answer:
    body = outcome.body if outcome.body is not None else dumps(outcome.result)
    return Answer.json(body, headers=[*outcome.headers.items()])


def ndjson(rows: Iterator[Any], headers: dict[str, str]) -> Answer:
    """A streamed answer, one JSON value a line, read from `rows` as it is sent. A failure
    after the first line ends the stream with `{"error": <problem>}` as its last line."""
    return Answer(
        status=200,
        headers=[("Content-Type", NDJSON), ("X-Accel-Buffering", "no"), *headers.items()],
        body=_lines(rows, request_id=get_request_id()),
        close=rows.close,
    )


def _lines(rows: Iterator[Any], *, request_id: str | None) -> Iterator[bytes]:
    # Django's handler sends a streamed body after the request scope ended: the rows are read
    # with the request's id all the same, for their log lines and the error line's problem.
    with request_id_scope(request_id):
        yield from _pieces(rows)


def _pieces(rows: Iterator[Any]) -> Iterator[bytes]:
    piece: list[bytes] = []
    size = 0
    sent = time.monotonic()
    try:
        for row in rows:
            line = dumps(row) + b"\n"
            piece.append(line)
            size += len(line)
            if size >= STREAM_PIECE or time.monotonic() - sent >= STREAM_WAIT:
                yield b"".join(piece)
                piece, size, sent = [], 0, time.monotonic()
    except Exception as exc:
        piece.append(dumps({"error": document_for_exception(exc).body()}) + b"\n")
    if piece:
        yield b"".join(piece)


def read_json_object(environ: Environ) -> Any:
    """The body, decoded: JSON only, at most ACTIONS_MAX_BODY bytes (413, checked against the
    declared length before anything is read). Numbers JSON cannot carry are kept for validation
    to name their field (400 with `errors`)."""
    content_type = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if content_type != JSON:
        raise UnsupportedMediaType()
    limit = settings.ACTIONS_MAX_BODY
    try:
        declared = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise MalformedInput("The Content-Length is not a number.") from None
    if declared > limit:
        raise PayloadTooLarge(f"The body may be at most {limit} bytes.")
    body = environ["wsgi.input"].read(declared) if declared > 0 else b""
    try:
        payload = loads(body, mark_non_finite=True)
    except ValueError as exc:  # includes JSONDecodeError and UnicodeDecodeError
        raise MalformedInput(f"The body is not valid JSON: {exc}.") from None
    if not isinstance(payload, dict):
        raise MalformedInput("The body must be a JSON object.")
    return payload
