"""What sits in front of Django's WSGI handler: chunked bodies, the API's handler, fast paths.

`config/wsgi.py` sets Django up, then stacks these around its handler:

- `ChunkedBodies`: a body sent with `Transfer-Encoding: chunked` is read (up to the path's
  limit) and handed on with its length declared, so every endpoint reads it as any other body,
  and one over the limit is refused by the endpoint's own check without more being read.
- `ApiPaths`: calls under API_PATH_PREFIXES (`/actions/`, `/api/v1/`) carry a bearer credential
  and JSON both ways and never use a session, a CSRF cookie, a message or a frame, so they take
  a second Django handler, the same as the first in everything (URLs, signals, exception
  handling, logging) but its middleware: API_MIDDLEWARE.
- `FastPaths`: the busiest paths (`GET /`, action calls) are answered at the WSGI level by routes
  their apps declare (`apps.hits.wsgi`, `apps.actions.wsgi`), as whitenoise serves static files:
  with exactly what the middleware and Django's handler would have done for them, and without
  what does nothing for them (URL resolving, the middleware chain, the request signals). A
  middleware a route does not account for stops the start-up: it is never silently skipped.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from csp.middleware import CSPMiddleware
from django.conf import settings
from django.core.exceptions import DisallowedHost, ImproperlyConfigured
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.http import HttpResponse, StreamingHttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware

from . import metrics, tracing
from .json import dumps
from .problems import (
    PROBLEM_CONTENT_TYPE,
    DocumentedProblem,
    ProblemDocument,
    problem_for_exception,
    server_error_document,
)
from .request_id import HEADER, META_KEY
from .scope import request_scope

Environ = dict
Headers = list[tuple[str, str]]

request_logger = logging.getLogger("django.request")

# The middleware whose only effect on a fast path's answers is their headers. (The CSP header
# changes per request only for a page that used a nonce; a fast path renders no page.)
HEADER_MIDDLEWARE = (SecurityMiddleware, CSPMiddleware, XFrameOptionsMiddleware)
# What every fast path does in place of a middleware, for any route.
REPRODUCED = {
    "apps.core.middleware.HttpMetricsMiddleware": "dbapi_http_* by the route's view name",
    tracing.DJANGO_MIDDLEWARE: "the server span and traceresponse (the request scope)",
    "apps.core.middleware.RequestIdMiddleware": "the request scope (apps.core.scope)",
    "django.middleware.security.SecurityMiddleware": "its headers; HTTPS redirects go to Django",
    "csp.middleware.CSPMiddleware": "its header (no nonce: a fast path renders no page)",
    "django.middleware.clickjacking.XFrameOptionsMiddleware": "its header",
    "apps.core.middleware.AllowedHostsMiddleware": "host validation: other hosts go to Django",
    "django.middleware.common.CommonMiddleware": (
        "Content-Length; hosts it refuses or redirects, and user agents it refuses, go to Django"
    ),
}
# Hosts (and schemes) already checked, per process; bounded, as clients choose the Host header.
KNOWN_HOSTS_LIMIT = 256


# --- Answers --------------------------------------------------------------------------------------


@dataclass
class Answer:
    """A status, headers and a body: what a fast route (or a view that shares its code with one)
    answers, before the request id and the middleware's headers are added."""

    status: int
    headers: Headers
    body: Iterable[bytes]
    # A 500 whose exception was logged with its traceback already: not logged a second time.
    logged: bool = False
    # Called once the body was sent, or the client went away (a stream ends its transaction).
    close: Callable[[], None] | None = None

    @classmethod
    def json(cls, content: bytes, *, status: int = 200, headers: Headers = ()) -> Answer:
        """An `application/json` answer of already encoded content."""
        return cls(
            status=status,
            headers=[
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(content))),
                *headers,
            ],
            body=[content],
        )

    @classmethod
    def problem(cls, document: ProblemDocument, *, logged: bool = False) -> Answer:
        content = document.content()
        headers = [
            ("Content-Type", PROBLEM_CONTENT_TYPE),
            ("Content-Length", str(len(content))),
            *document.headers.items(),
        ]
        return cls(status=document.status, headers=headers, body=[content], logged=logged)

    @classmethod
    def for_exception(cls, exc: BaseException) -> Answer:
        """The problem answer to an exception; a bug's is a 500, logged here once."""
        document = problem_for_exception(exc)
        if document is None:
            return cls.problem(server_error_document(exc), logged=True)
        return cls.problem(document, logged=isinstance(exc, DocumentedProblem) and exc.logged)

    @property
    def status_line(self) -> str:
        return status_line(self.status)

    def as_response(self) -> HttpResponse:
        """The same answer as a Django response, for the view that shares the route's code."""
        if isinstance(self.body, list) and self.close is None:
            response = HttpResponse(b"".join(self.body), status=self.status)
        else:  # Django closes a streaming response's content when it is done with it
            response = StreamingHttpResponse(
                ClosingBody(self.body, self.close or _nothing), status=self.status
            )
        for name, value in self.headers:
            response[name] = value
        if self.logged:
            response._has_been_logged = True  # so Django does not log the 500 a second time
        return response


@functools.cache
def status_line(status: int) -> str:
    """`200 OK`: WSGI's status line for a status (HTTPStatus refuses others, so a few, kept)."""
    return f"{status} {HTTPStatus(status).phrase}"


def json_answer(value: Any, *, status: int = 200, headers: Headers = ()) -> Answer:
    return Answer.json(dumps(value), status=status, headers=headers)


# --- Chunked request bodies -----------------------------------------------------------------------


class ChunkedBodies:
    """Hand a chunked request body on as if its length had been declared.

    WSGI servers that de-chunk a body (gunicorn: `wsgi.input_terminated`) give no Content-Length,
    and Django reads such a body as empty. Here it is read up to the limit of its path (`limits`:
    path prefixes and their byte limits, else DATA_UPLOAD_MAX_MEMORY_SIZE) and declared; a body
    over the limit is declared one byte longer than the limit with nothing to read, so the
    endpoint's own check refuses it (413) as it refuses a declared length, without reading more.
    A server that passes chunks through undecoded (runserver) gets 411.
    """

    def __init__(self, application: Callable, *, limits: Sequence[tuple[str, int]] = ()):
        self.application = application
        self.limits = tuple(limits)

    def __call__(self, environ: Environ, start_response: Callable) -> Iterable[bytes]:
        if (
            environ.get("CONTENT_LENGTH")
            or "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        ):
            return self.application(environ, start_response)
        if not environ.get("wsgi.input_terminated"):
            return self.length_required(environ, start_response)
        limit = self.limit_for(environ.get("PATH_INFO", ""))
        body = (
            environ["wsgi.input"].read() if limit is None else environ["wsgi.input"].read(limit + 1)
        )
        if limit is not None and len(body) > limit:
            body = b""
            environ["CONTENT_LENGTH"] = str(limit + 1)
        else:
            environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.input"] = io.BytesIO(body)
        return self.application(environ, start_response)

    def limit_for(self, path: str) -> int | None:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    @staticmethod
    def length_required(environ: Environ, start_response: Callable) -> Iterable[bytes]:
        with request_scope(environ.get(META_KEY), connections=False) as request_id:
            document = ProblemDocument(
                status=411,
                title=HTTPStatus(411).phrase,
                detail="This server reads no chunked bodies: send a Content-Length.",
            )
            answer = Answer.problem(document)
        start_response(answer.status_line, [*answer.headers, (HEADER, request_id)])
        return answer.body


# --- The API's handler ----------------------------------------------------------------------------


def api_paths(application: Callable) -> Callable:
    """Wrap the Django WSGI application so API calls take the API handler."""
    if not settings.API_PATH_PREFIXES:
        return application
    return ApiPaths(application)


class ApiPaths:
    """Send requests under API_PATH_PREFIXES to the API handler, the rest on."""

    def __init__(self, application: Callable):
        self.application = application
        self.prefixes = tuple(settings.API_PATH_PREFIXES)
        self.api = ApiHandler()

    def __call__(self, environ: Environ, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(self.prefixes):
            return self.api(environ, start_response)
        return self.application(environ, start_response)


class ApiHandler(WSGIHandler):
    """Django's WSGI handler with API_MIDDLEWARE as its middleware."""

    def load_middleware(self, is_async: bool = False) -> None:
        # Django's handler reads its middleware from settings.MIDDLEWARE and has no other seam;
        # this one is built once, at start-up, with API_MIDDLEWARE in its place while it loads.
        everything = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.API_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = everything


# --- Fast paths -----------------------------------------------------------------------------------


class PassOn(Exception):
    """Raised by a route's `answer`, before it changed anything, for a request it leaves to
    Django's handler after all (one it could only tell apart by reading the database or the
    body). Django then serves it in a request scope of its own; with tracing on, the route's
    server span ends without an answer beside Django's."""


class FastRoute:
    """A path an app answers at the WSGI level. Subclasses say which requests they claim
    (`match`), how to answer them (`answer`), which middleware setting stands for the requests
    they claim, and what the middleware that the fast path does not reproduce does for them
    (`does_nothing`: path → why), so that a middleware nobody accounted for stops the start-up."""

    name: str = ""
    middleware_setting: str = "MIDDLEWARE"
    does_nothing: Mapping[str, str] = {}

    def match(self, environ: Environ) -> Any:
        """What `answer` needs to serve the request, or None to leave it to Django."""
        raise NotImplementedError

    def view_name(self, match: Any) -> str:
        """The name of the URL pattern Django would have resolved the request to (for metrics)."""
        raise NotImplementedError

    def answer(self, environ: Environ, match: Any) -> Answer:
        """The answer, inside the request's scope (its id, its database connections)."""
        raise NotImplementedError


class FastPaths:
    """Answer the requests the routes claim, as Django would; pass every other request on.

    For them it does what the middleware and Django's handler would have done:

    - the request scope, as `RequestIdMiddleware` and the request signals set it up: the request
      id for the answer and the logs, the database connections checked before and after (the
      signals themselves are not sent: other receivers of them do not run for these paths), and
      the server span Django's tracing middleware would have started, with its `traceresponse`;
    - host validation, HTTPS redirects and CommonMiddleware's refusals: a request Django would
      refuse or redirect goes on to Django;
    - the headers `SecurityMiddleware`, `CSPMiddleware` and `XFrameOptionsMiddleware` add, which
      depend only on the settings and on HTTPS: the middleware computes them, once, at start-up;
    - errors answered as problems, and answers of 400 and above logged as Django logs them;
    - the request counted and timed by the view Django would have resolved it to.
    """

    def __init__(self, application: Callable, routes: Sequence[FastRoute]):
        self.application = application
        self.routes = tuple(routes)
        self.headers: dict[tuple[str, bool], Headers] = {}
        for route in self.routes:
            middleware = getattr(settings, route.middleware_setting)
            check_accounted_for(route, middleware)
            for secure in (False, True):
                self.headers[route.name, secure] = middleware_headers(
                    secure=secure, middleware=middleware
                )
        self.proxy_ssl_header = (settings.SECURE_PROXY_SSL_HEADER or (None,))[0]
        self.known_hosts: dict[tuple, bool] = {}
        self.refused_agents = tuple(settings.DISALLOWED_USER_AGENTS)

    def __call__(self, environ: Environ, start_response: Callable) -> Iterable[bytes]:
        for route in self.routes:
            match = route.match(environ)
            if match is not None:
                break
        else:
            return self.application(environ, start_response)
        secure = self.secure_if_served_here(environ)
        if secure is None:
            return self.application(environ, start_response)  # refused or redirected by Django
        started = time.perf_counter()
        view = route.view_name(match)
        trace = tracing.http_request(environ, view=view)
        # Entered and exited by hand rather than in an ExitStack, which costs every request more
        # than the rest of this method: only a stream's scope outlives the call (`end` below).
        scope = request_scope(environ.get(META_KEY), trace=trace)
        request_id = scope.__enter__()
        try:
            answer = route.answer(environ, match)
        except PassOn:
            scope.__exit__(None, None, None)
            return self.application(environ, start_response)
        except Exception as exc:
            answer = Answer.for_exception(exc)
        if answer.status >= 400 and not answer.logged:
            log_answer(environ, answer)
        metrics.record_http(
            view=view,
            method=environ["REQUEST_METHOD"],
            status=answer.status,
            seconds=time.perf_counter() - started,
        )
        headers = [
            *answer.headers,
            *self.headers[route.name, secure],
            (HEADER, request_id),
            *tracing.answered(status=answer.status),
        ]
        end = scope
        if answer.close is not None:
            end = contextlib.ExitStack()  # the answer's close first, then the scope's
            end.push(scope)
            end.callback(answer.close)
        try:
            start_response(answer.status_line, headers)
        except BaseException:
            end.__exit__(None, None, None)
            raise
        if answer.close is None and isinstance(answer.body, list):
            # An answer made whole ends its request here, whether or not the server closes the
            # body (a test client may not): only a stream keeps its scope until it is closed.
            scope.__exit__(None, None, None)
            return answer.body
        return ClosingBody(answer.body, functools.partial(end.__exit__, None, None, None))

    def secure_if_served_here(self, environ: Environ) -> bool | None:
        """Whether the request came over HTTPS; None when Django must answer it instead (a host
        it does not allow or redirects, plain HTTP it redirects, a user agent it refuses).
        Django's request decides, once per host."""
        if self.refused_agents and _refused_agent(environ, self.refused_agents):
            return None
        key = (
            environ.get("HTTP_HOST"),
            environ.get("HTTP_X_FORWARDED_HOST"),
            environ.get("SERVER_NAME"),
            environ.get("SERVER_PORT"),
            environ.get("HTTP_X_FORWARDED_PORT"),
            environ.get("wsgi.url_scheme"),
            environ.get(self.proxy_ssl_header),
        )
        secure = self.known_hosts.get(key)
        if secure is None:
            secure = check_host(environ)
            if secure is not None and len(self.known_hosts) < KNOWN_HOSTS_LIMIT:
                self.known_hosts[key] = secure
        return secure


class ClosingBody:
    """The body the server sends; closing it ends the request's scope (and a stream's
    transaction), also when the client went away before the end."""

    def __init__(self, body: Iterable[bytes], close: Callable[[], None]):
        self.body = body
        self.close = close

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)


def check_accounted_for(route: FastRoute, middleware: Sequence[str]) -> None:
    """Every middleware of the route's setting is reproduced or does nothing for the route;
    otherwise the start-up stops, naming it."""
    unknown = [m for m in middleware if m not in REPRODUCED and m not in route.does_nothing]
    if unknown:
        raise ImproperlyConfigured(
            f"The {route.name} fast path does not reproduce {', '.join(unknown)} "
            f"(in {route.middleware_setting}). Account for it in {type(route).__module__}, or "
            f"turn the fast path off ({route.name.upper()}_FAST_PATH=false)."
        )


def check_host(environ: Environ) -> bool | None:
    request = WSGIRequest(environ)
    try:
        host = request.get_host()
    except DisallowedHost:
        return None
    if settings.PREPEND_WWW and not host.startswith("www."):
        return None  # CommonMiddleware redirects it
    secure = request.is_secure()
    if settings.SECURE_SSL_REDIRECT and not secure:
        return None
    return secure


def _refused_agent(environ: Environ, patterns: Sequence[re.Pattern]) -> bool:
    agent = environ.get("HTTP_USER_AGENT", "")
    return any(pattern.search(agent) for pattern in patterns)


def log_answer(environ: Environ, answer: Answer) -> None:
    """Log an answer of 400 and above as Django's handler logs it (`log_response`)."""
    path = environ.get("PATH_INFO", "")
    message, args = "%s: %s", (HTTPStatus(answer.status).phrase, path)
    extra = {"status_code": answer.status}
    if answer.status >= 500:
        request_logger.error(message, *args, extra=extra)
    else:
        request_logger.warning(message, *args, extra=extra)


def middleware_headers(*, secure: bool, middleware: Sequence[str]) -> Headers:
    """The headers the header-only middleware among `middleware` add to an answer, computed by
    running them once on a sample request and response."""
    request = WSGIRequest(
        {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/",
            "wsgi.input": io.BytesIO(),
            "wsgi.url_scheme": "https" if secure else "http",
        }
    )
    response = HttpResponse()
    before = set(response.headers)
    for found in HEADER_MIDDLEWARE:
        if f"{found.__module__}.{found.__name__}" in middleware:
            found(get_response=_not_called).process_response(request, response)
    return [(name, value) for name, value in response.items() if name not in before]


def _nothing() -> None:
    pass


def _not_called(request):
    raise AssertionError("only process_response is used")
