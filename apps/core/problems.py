"""RFC 9457 problem details: the one shape every API error takes.

`problem()` builds the response; `problem_for_exception()` maps the exceptions raised by views and
services to it, and is used by DRF's exception handler, the Django error handlers and any plain
view that catches errors itself. Unknown exceptions become a 500 that shows the request id and
never a traceback (the traceback goes to the log).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse
from rest_framework import exceptions
from rest_framework.settings import api_settings

from .json import dumps
from .request_id import get_request_id

PROBLEM_CONTENT_TYPE = "application/problem+json"
# Problems that need more than their status to be told apart carry a `type` under this path (a
# URI reference, resolved against the API's own address); the others are "about:blank".
PROBLEM_TYPE_PREFIX = "/problems/"

logger = logging.getLogger(__name__)


class Problem(exceptions.APIException):
    """Base for the project's own errors: raise a subclass, get a problem response.

    Subclasses set `status_code` and `default_detail`, and may set `headers`, and `type_slug`
    when clients must tell this problem from others with the same status.
    """

    headers: dict[str, str] = {}
    type_slug: str | None = None


def problem_type(slug: str | None) -> str:
    """The `type` of a problem: `/problems/<slug>`, or "about:blank" when it has no slug."""
    return f"{PROBLEM_TYPE_PREFIX}{slug}" if slug else "about:blank"


class PayloadTooLarge(Problem):
    status_code = 413
    default_detail = "The body is too large."


class DatabaseUnavailable(Problem):
    """The database did not answer (down, restarting, a lost connection, a deadlock): nothing
    was committed, and the same call may succeed in a moment."""

    status_code = 503
    default_detail = "The database is unavailable; nothing was changed. Try again shortly."
    headers = {"Retry-After": "5"}


def problem(
    status: int,
    *,
    detail: str | None = None,
    title: str | None = None,
    errors: Any = None,
    headers: dict[str, str] | None = None,
    type_slug: str | None = None,
    **extensions: Any,
) -> HttpResponse:
    """A problem+json response. `title` defaults to the HTTP reason phrase, as RFC 9457 asks."""
    body: dict[str, Any] = {
        "type": problem_type(type_slug),
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = str(detail)
    if errors is not None:
        body["errors"] = errors
    body.update(extensions)
    request_id = get_request_id()
    if request_id:
        body["request_id"] = request_id
    response = HttpResponse(dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def field_errors(detail: Any) -> dict:
    """DRF validation detail as `{"field": ["message", ...]}`; non-field ones under their key."""
    if isinstance(detail, dict):
        return detail
    if not isinstance(detail, list):
        detail = [detail]
    return {api_settings.NON_FIELD_ERRORS_KEY: detail}


def problem_for_exception(exc: Exception) -> HttpResponse | None:
    """The problem response for a known exception, or None for one that is a bug."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    elif isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = PayloadTooLarge(f"The body may be at most {limit} bytes.")
    elif isinstance(exc, SuspiciousOperation):  # what Django itself answers with a 400
        exc = exceptions.ParseError("The request could not be understood.")
    elif isinstance(exc, OperationalError | InterfaceError):
        logger.error("Database unavailable: %s", exc.__class__.__name__, exc_info=exc)
        exc = DatabaseUnavailable()
    if not isinstance(exc, exceptions.APIException):
        return None

    headers = dict(getattr(exc, "headers", None) or {})
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait + 0.999))
    if isinstance(exc, exceptions.ValidationError):
        return problem(
            exc.status_code,
            detail="The input is not valid.",
            errors=field_errors(exc.detail),
            headers=headers,
        )
    detail = exc.detail if isinstance(exc.detail, str) else None
    type_slug = getattr(exc, "type_slug", None)
    return problem(exc.status_code, detail=detail, headers=headers, type_slug=type_slug)


def server_error(exc: BaseException | None = None) -> HttpResponse:
    """A 500 that names the request id so the log line can be found, and nothing more."""
    response = problem(
        500,
        detail="The server failed to answer. Quote the request id when reporting this.",
    )
    if exc is not None:
        logger.error("Unhandled exception", exc_info=exc)
        response._has_been_logged = True  # so Django does not log it a second time
    return response


def exception_handler(exc: Exception, context: dict) -> HttpResponse:
    """DRF's EXCEPTION_HANDLER: every error a DRF view raises becomes problem+json."""
    # Imported here: rest_framework.views loads the parser classes, and the project's parser
    # imports this module.
    from rest_framework.views import set_rollback

    set_rollback()
    response = problem_for_exception(exc)
    if response is None:
        response = server_error(exc)
    return response
