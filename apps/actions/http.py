"""Action calls over HTTP: decode the request into an `ActionCall`, encode what the pipeline
answers. Shared by the Django views (`views.py`) and the WSGI fast path (`wsgi.py`), which both
work from the WSGI environ, so the two answer alike by construction."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from apps.core.json import dumps, loads
from apps.core.problems import PayloadTooLarge
from apps.core.wsgi import Answer, Environ

from . import pipeline
from .exceptions import MalformedInput, MethodNotAllowed, UnsupportedMediaType

JSON = "application/json"


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
        )
        outcome = pipeline.perform(call) if action else pipeline.ping(call)
    except Exception as exc:
        return Answer.for_exception(exc)
    return Answer.json(dumps(outcome.result), headers=[*outcome.headers.items()])


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
