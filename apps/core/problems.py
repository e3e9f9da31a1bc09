"""RFC 9457 problem details: the one shape every API error takes, whatever the transport.

An error is an exception; `problem_for_exception()` turns it into a `ProblemDocument` (status,
type, title, detail, extra members, headers), which knows nothing of HTTP or gRPC. The HTTP side
renders the document as `application/problem+json` (`problem_response`), the gRPC side as a
status code with the same document in `problem-bin` (apps.rpc.errors). Unknown exceptions are a
500 that shows the request id and never a traceback (the traceback goes to the log).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse
from psycopg2.errors import LockNotAvailable
from rest_framework import exceptions
from rest_framework.settings import api_settings

from . import metrics
from .database import DatabaseTimeout
from .json import dumps
from .request_id import get_request_id

PROBLEM_CONTENT_TYPE = "application/problem+json"
# Where problem types live: a problem with a `type_slug` has `type` = PROBLEM_TYPE_BASE + slug
# (e.g. `/problems/statement-timeout`); the others are `about:blank`, as RFC 9457 suggests for
# problems that mean no more than their HTTP status.
PROBLEM_TYPE_BASE = "/problems/"

logger = logging.getLogger(__name__)


class Problem(exceptions.APIException):
    """Base for the project's own errors: raise a subclass, get a problem answer.

    Subclasses set `status_code` and `default_detail`, and may set `headers` and `type_slug`.
    A DRF APIException, so DRF views raising one answer through the same exception handler.
    """

    headers: dict[str, str] = {}
    type_slug: str | None = None

    def __init__(self, detail: Any = None, *, headers: dict[str, str] | None = None, **members):
        super().__init__(detail)
        if headers:
            self.headers = {**self.headers, **headers}
        self.members = members


class PayloadTooLarge(Problem):
    status_code = 413
    default_detail = "The body is too large."


class DatabaseUnavailable(Problem):
    """The database did not answer (down, restarting, a lost connection, a deadlock): nothing
    was committed, and the same call may succeed in a moment."""

    status_code = 503
    default_detail = "The database is unavailable; nothing was changed. Try again shortly."
    headers = {"Retry-After": "5"}


class DatabaseOutcomeUnknown(DatabaseUnavailable):
    """The database stopped answering after a change was sent to it (a COMMIT, or a statement
    outside a transaction): the server may still apply it when it answers again."""

    default_detail = (
        "The database stopped answering after the change was sent: it may or may not have been "
        "made. Check before trying again."
    )


class DocumentedProblem(Exception):
    """An error whose problem document is already made, e.g. a batch's failing call with its
    `index` added: raised on, it is answered with that document as it is.

    `logged`: the document is a bug's 500 whose traceback was logged when it was made, so the
    transport does not log the answer a second time.
    """

    def __init__(self, document: ProblemDocument, *, logged: bool = False):
        super().__init__(document.detail or document.title)
        self.document = document
        self.logged = logged

    @classmethod
    def of(cls, exc: BaseException) -> DocumentedProblem:
        """`exc` as a documented problem, to add to its document: a bug's 500 is logged here."""
        if isinstance(exc, DocumentedProblem):
            return exc
        document = problem_for_exception(exc)
        if document is None:
            return cls(server_error_document(exc), logged=True)
        return cls(document)

    def adding(self, *, headers: dict[str, str] | None = None, **members: Any) -> DocumentedProblem:
        """The same problem with more members (`ProblemDocument.with_members`) or answer headers
        (`ProblemDocument.with_headers`)."""
        document = self.document.with_members(**members) if members else self.document
        if headers:
            document = document.with_headers(headers)
        return DocumentedProblem(document, logged=self.logged)


@dataclass(frozen=True)
class ProblemDocument:
    """A problem as data: what every transport renders its own way."""

    status: int
    title: str
    detail: str | None = None
    type: str = "about:blank"
    members: dict[str, Any] = field(default_factory=dict)  # `errors`, `index`, `request_id`…
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        """The JSON object of the problem, with the request id of the call it answers."""
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        body.update(self.members)
        request_id = get_request_id()
        if request_id and "request_id" not in body:
            body["request_id"] = request_id
        return body

    def content(self) -> bytes:
        return dumps(self.body())

    def with_members(self, **members: Any) -> ProblemDocument:
        """The same problem with more members (e.g. a batch adds the failing call's `index`)."""
        return replace(self, members={**self.members, **members})

    def with_headers(self, headers: dict[str, str]) -> ProblemDocument:
        """The same problem answered with more headers (e.g. the RateLimit headers of a counted
        call); a header the problem sets itself keeps the problem's value."""
        return replace(self, headers={**headers, **self.headers})


def problem_document(
    status: int,
    *,
    detail: str | None = None,
    title: str | None = None,
    type_slug: str | None = None,
    errors: Any = None,
    headers: dict[str, str] | None = None,
    **members: Any,
) -> ProblemDocument:
    """A problem document. `title` defaults to the HTTP reason phrase, as RFC 9457 asks."""
    if errors is not None:
        members = {"errors": errors, **members}
    return ProblemDocument(
        status=status,
        title=title or HTTPStatus(status).phrase,
        detail=str(detail) if detail else None,
        type=f"{PROBLEM_TYPE_BASE}{type_slug}" if type_slug else "about:blank",
        members=members,
        headers=dict(headers or {}),
    )


def problem_response(document: ProblemDocument) -> HttpResponse:
    """The document as an `application/problem+json` HTTP response."""
    response = HttpResponse(
        document.content(), status=document.status, content_type=PROBLEM_CONTENT_TYPE
    )
    for name, value in document.headers.items():
        response[name] = value
    return response


def problem(status: int, **kwargs: Any) -> HttpResponse:
    """A problem+json response built in one go (`problem_document`'s arguments)."""
    return problem_response(problem_document(status, **kwargs))


def field_errors(detail: Any) -> dict:
    """DRF validation detail as `{"field": ["message", ...]}`; non-field ones under their key."""
    if isinstance(detail, dict):
        return detail
    if not isinstance(detail, list):
        detail = [detail]
    return {api_settings.NON_FIELD_ERRORS_KEY: detail}


def problem_for_exception(exc: BaseException) -> ProblemDocument | None:
    """The problem for a known exception, or None for one that is a bug."""
    if isinstance(exc, DocumentedProblem):
        return exc.document
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    elif isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = PayloadTooLarge(f"The body may be at most {limit} bytes.")
    elif isinstance(exc, SuspiciousOperation):  # what Django itself answers with a 400
        exc = exceptions.ParseError("The request could not be understood.")
    elif isinstance(exc, OperationalError | InterfaceError | DatabaseTimeout):
        exc = database_problem(exc)
    if not isinstance(exc, exceptions.APIException):
        return None

    headers = dict(getattr(exc, "headers", None) or {})
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait + 0.999))
    type_slug = getattr(exc, "type_slug", None)
    members = getattr(exc, "members", None) or {}
    if isinstance(exc, exceptions.ValidationError):
        return problem_document(
            exc.status_code,
            detail="The input is not valid.",
            errors=field_errors(exc.detail),
            type_slug=type_slug,
            headers=headers,
            **members,
        )
    detail = exc.detail if isinstance(exc.detail, str) else None
    return problem_document(
        exc.status_code, detail=detail, type_slug=type_slug, headers=headers, **members
    )


def database_problem(exc: BaseException) -> DatabaseUnavailable:
    """The 503 for a database that failed, did not answer in time (apps.core.database) or kept
    a lock past lock_timeout, logged; it says that nothing was changed unless what was waited for
    may still take effect."""
    metrics.record_dependency_error("database")
    cause = exc if isinstance(exc, DatabaseTimeout) else exc.__cause__
    if isinstance(cause, DatabaseTimeout | LockNotAvailable):  # known causes: no traceback
        logger.error("Database unavailable: %s", str(cause).strip())
        if isinstance(cause, DatabaseTimeout) and cause.outcome_unknown:
            return DatabaseOutcomeUnknown()
        return DatabaseUnavailable()
    logger.error("Database unavailable: %s", exc.__class__.__name__, exc_info=exc)
    return DatabaseUnavailable()


def status_for_exception(exc: BaseException) -> int:
    """The status `document_for_exception` answers `exc` with, without making the document (nor
    logging it): for metrics and traces, which see every call's outcome before it is encoded."""
    if isinstance(exc, DocumentedProblem):
        return exc.document.status
    for kinds, status in _STATUSES:
        if isinstance(exc, kinds):
            return status
    if isinstance(exc, exceptions.APIException):
        return exc.status_code
    return 500


_STATUSES = (
    (Http404, 404),
    (PermissionDenied, 403),
    (RequestDataTooBig, 413),
    (SuspiciousOperation, 400),
    ((OperationalError, InterfaceError, DatabaseTimeout), 503),
)


def server_error_document(exc: BaseException | None = None) -> ProblemDocument:
    """A 500 that names the request id so the log line can be found, and nothing more. The
    exception, when given, is logged here with its traceback."""
    if exc is not None:
        logger.error("Unhandled exception", exc_info=exc)
    return problem_document(
        500, detail="The server failed to answer. Quote the request id when reporting this."
    )


def document_for_exception(exc: BaseException) -> ProblemDocument:
    """The problem for any exception: a known one's, or a logged 500."""
    return problem_for_exception(exc) or server_error_document(exc)


def server_error(exc: BaseException | None = None) -> HttpResponse:
    """The 500 as an HTTP response; marked as logged so Django does not log it a second time."""
    response = problem_response(server_error_document(exc))
    if exc is not None:
        response._has_been_logged = True
    return response


def exception_handler(exc: Exception, context: dict) -> HttpResponse:
    """DRF's EXCEPTION_HANDLER: every error a DRF view raises becomes problem+json."""
    # Imported here: rest_framework.views loads the parser classes, and the project's parser
    # imports this module.
    from rest_framework.views import set_rollback

    set_rollback()
    document = problem_for_exception(exc)
    if document is None:
        return server_error(exc)
    return problem_response(document)
