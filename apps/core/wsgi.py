"""What sits in front of Django's WSGI handler: the API's own handler, and fast paths.

Calls under API_PATH_PREFIXES (`/actions/`, `/api/v1/`) carry a bearer key or token and JSON
both ways; they never use a session, a CSRF cookie, a message or a frame. The sessions, CSRF,
auth, OTP, messages, common and X-Frame-Options middleware would only add time to each of them
(about a ninth of an action call's CPU, measured). So they go through a second Django handler,
the same as the first in everything (URLs, signals, exception handling, logging) but its
middleware: API_MIDDLEWARE (the request id and the security headers).

The busiest paths go further, as whitenoise does for static files: a `FastPath` answers them at
the WSGI level, with exactly what the middleware and Django's handler would have done for them
(see FastPath), and without what does nothing for them: URL resolving, the middleware chain, the
request signals. Apps subclass it for their paths (`apps.hits.wsgi`, `apps.actions.wsgi`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from csp.middleware import CSPMiddleware
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest, get_script_name
from django.db import close_old_connections
from django.http import HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import set_script_prefix
from django.utils.log import log_response

from .request_id import HEADER, META_KEY, request_id_scope

Environ = dict
Headers = list[tuple[str, str]]
Answer = tuple[str, Headers, bytes]

# The middleware whose only effect on a fast path's answers is their headers. (The CSP header
# changes per request only for a page that used a nonce; a fast path renders no template.)
HEADER_MIDDLEWARE = (SecurityMiddleware, CSPMiddleware, XFrameOptionsMiddleware)
# Hosts (and schemes) already checked, per process; bounded, as clients choose the Host header.
KNOWN_HOSTS_LIMIT = 256


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
        # Django's handler reads its middleware from settings.MIDDLEWARE; this one is built once,
        # at start-up, with API_MIDDLEWARE in its place while it loads.
        everything = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.API_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = everything


# --- Fast paths -----------------------------------------------------------------------------------


class FastPath:
    """Answer some requests at the WSGI level, as Django would; pass every other request on.

    For the requests `route()` claims, it does what the middleware in `middleware` and Django's
    handler would have done:

    - the request id, as `RequestIdMiddleware` sets it (for the answer and the logs);
    - host validation and HTTPS redirects: a request Django would refuse or redirect goes on;
    - the headers `SecurityMiddleware`, `CSPMiddleware` and `XFrameOptionsMiddleware` add, which
      depend only on the settings and on HTTPS: the middleware computes them, once, at start-up;
    - what Django's receivers of `request_started`/`request_finished` do: close database
      connections that are broken or past CONN_MAX_AGE, after each request (which also has the
      next one check a connection's health before using it). It calls that directly: sending
      the two signals cost more than a whole hit (measured), so other receivers of those
      signals do not run for these paths;
    - errors: Django's own exception handling answers them (problem+json, logged once), and
      answers of 400 and above are logged as Django logs them.
    """

    def __init__(self, application: Callable, *, middleware: Sequence[str]):
        self.application = application
        self.middleware_headers = {
            secure: middleware_headers(secure=secure, middleware=middleware)
            for secure in (False, True)
        }
        self.proxy_ssl_header = (settings.SECURE_PROXY_SSL_HEADER or (None,))[0]
        self.known_hosts: dict[tuple, bool] = {}

    def route(self, environ: Environ) -> Any:
        """What `answer` needs to serve this request, or None to pass it on."""
        raise NotImplementedError

    def answer(self, environ: Environ, route: Any, *, request_id: str) -> Answer:
        """Status line, headers and body for the request, inside its request id's scope."""
        raise NotImplementedError

    def __call__(self, environ: Environ, start_response: Callable) -> Iterable[bytes]:
        route = self.route(environ)
        if route is None:
            return self.application(environ, start_response)
        secure = self.secure_if_served_here(environ)
        if secure is None:
            return self.application(environ, start_response)  # refused or redirected by Django
        with request_id_scope(environ.get(META_KEY)) as request_id:
            try:
                status, headers, body = self.answer(environ, route, request_id=request_id)
            except Exception as exc:
                status, headers, body = self.error(environ, exc, request_id=request_id)
        headers += self.middleware_headers[secure]
        headers.append((HEADER, request_id))
        start_response(status, headers)
        return EndsTheRequest([body])

    @staticmethod
    def request(environ: Environ, *, request_id: str) -> WSGIRequest:
        """The Django request a view gets, as the handler and RequestIdMiddleware make it."""
        set_script_prefix(get_script_name(environ))
        request = WSGIRequest(environ)
        request.id = request_id
        return request

    @staticmethod
    def from_response(request: WSGIRequest, response: HttpResponse) -> Answer:
        """A view's response as a WSGI answer, logged as Django logs 4xx and 5xx answers."""
        if response.status_code >= 400:
            log_response(
                "%s: %s", response.reason_phrase, request.path, response=response, request=request
            )
        content = response.content
        if not response.has_header("Content-Length"):
            response["Content-Length"] = str(len(content))
        return f"{response.status_code} {response.reason_phrase}", [*response.items()], content

    @classmethod
    def error(cls, environ: Environ, exc: Exception, *, request_id: str) -> Answer:
        """Django's own answer to the exception: handler500 (problem+json), logged once."""
        request = cls.request(environ, request_id=request_id)
        return cls.from_response(request, response_for_exception(request, exc))

    def secure_if_served_here(self, environ: Environ) -> bool | None:
        """Whether the request came over HTTPS; None when Django must answer it instead (a host
        it does not allow, or plain HTTP it redirects). Django's request decides, once per host."""
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
            secure = self.check_host(environ)
            if secure is not None and len(self.known_hosts) < KNOWN_HOSTS_LIMIT:
                self.known_hosts[key] = secure
        return secure

    @staticmethod
    def check_host(environ: Environ) -> bool | None:
        request = WSGIRequest(environ)
        try:
            request.get_host()
        except DisallowedHost:
            return None
        secure = request.is_secure()
        if settings.SECURE_SSL_REDIRECT and not secure:
            return None
        return secure


class EndsTheRequest(list):
    """The body; when the server closes it, after sending it, the database connections are
    checked as Django checks them when a request finishes."""

    def close(self) -> None:
        close_old_connections()


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


def _not_called(request):
    raise AssertionError("only process_response is used")
