"""A WSGI fast path for `GET /`, in front of Django's handler (as whitenoise is for static files).

`GET /` is the busiest and cheapest request: one Redis script. Through Django's handler it would
pay several times that for URL resolving, request and response objects and the middleware, most
of which (sessions, CSRF, auth, messages) do nothing for it. The fast path answers it at the WSGI
level with what the middleware would have done:

- the request id, as `RequestIdMiddleware` sets it (for the answer and the logs);
- host validation and HTTPS redirects: a request Django would refuse or redirect goes to Django;
- the headers `SecurityMiddleware` and `XFrameOptionsMiddleware` add, which depend only on the
  settings and on HTTPS: Django's own middleware computes them, once, at start-up;
- what Django's receivers of `request_started`/`request_finished` do for it: close database
  connections that are broken or past CONN_MAX_AGE, after each request (which also has the next
  one check a connection's health before using it). It calls that directly:
  sending the two signals cost more than the rest of the fast path together (measured, see the
  README), so, as for whitenoise's files, other receivers of those signals do not run for `/`;
- errors: a failing hit is answered by Django's exception handling (problem+json, logged once).

Every other request goes to Django untouched. The tests compare its answers with Django's; a
middleware it does not know about turns it off (see ACCOUNTED_FOR).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIRequest, get_script_name
from django.db import close_old_connections
from django.http import HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import set_script_prefix

from apps.core.request_id import HEADER, META_KEY, request_id_scope

logger = logging.getLogger(__name__)

# What each middleware does for `GET /`, and how the fast path does it. A middleware missing from
# here turns the fast path off, until someone checks what it does for `/` and adds it.
ACCOUNTED_FOR = {
    "apps.core.middleware.RequestIdMiddleware": "the request id, set here the same way",
    "django.middleware.security.SecurityMiddleware": "headers; HTTPS redirects go to Django",
    "whitenoise.middleware.WhiteNoiseMiddleware": "nothing: it serves /static/ only",
    "django.contrib.sessions.middleware.SessionMiddleware": "nothing: / reads no session",
    "django.middleware.common.CommonMiddleware": "Content-Length; refused hosts go to Django",
    "django.middleware.csrf.CsrfViewMiddleware": "nothing: / is a GET, and exempt",
    "django.contrib.auth.middleware.AuthenticationMiddleware": "nothing: / reads no user",
    "django_otp.middleware.OTPMiddleware": "nothing: / reads no user",
    "django.contrib.messages.middleware.MessageMiddleware": "nothing: / shows no message",
    "django.middleware.clickjacking.XFrameOptionsMiddleware": "a header",
}
# The middleware whose only effect on `/` is its response headers.
HEADER_MIDDLEWARE = (SecurityMiddleware, XFrameOptionsMiddleware)
# Hosts (and schemes) already checked, per process; bounded, as clients choose the Host header.
KNOWN_HOSTS_LIMIT = 256

Environ = dict
Headers = list[tuple[str, str]]


def hits_fast_path(application: Callable) -> Callable:
    """Wrap the Django WSGI application with the fast path, unless it is off or cannot apply."""
    if not settings.HITS_FAST_PATH:
        return application
    unknown = [path for path in settings.MIDDLEWARE if path not in ACCOUNTED_FOR]
    if unknown:
        logger.warning("The GET / fast path is off: it does not account for %s", unknown)
        return application
    if settings.PREPEND_WWW or settings.DISALLOWED_USER_AGENTS:
        return application  # CommonMiddleware would redirect or refuse some `GET /`
    return HitsFastPath(application)


class HitsFastPath:
    """Answer `GET /` at the WSGI level, as Django would; pass every other request on."""

    def __init__(self, application: Callable):
        # Here, not at the top: config/wsgi.py imports this module before Django is set up.
        from .services import ROOT_COUNTER, count_hit
        from .views import ANSWER_HEADERS, preferred_type, render_total

        self.application = application
        self.counter, self.count_hit = ROOT_COUNTER, count_hit
        self.answer_headers, self.preferred_type = ANSWER_HEADERS, preferred_type
        self.render_total = render_total
        self.middleware_headers = {
            secure: middleware_headers(secure=secure) for secure in (False, True)
        }
        self.proxy_ssl_header = (settings.SECURE_PROXY_SSL_HEADER or (None,))[0]
        self.known_hosts: dict[tuple, bool] = {}

    def __call__(self, environ: Environ, start_response: Callable) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] != "GET" or environ.get("PATH_INFO") != "/":
            return self.application(environ, start_response)
        secure = self.secure_if_served_here(environ)
        if secure is None:
            return self.application(environ, start_response)  # refused or redirected by Django
        with request_id_scope(environ.get(META_KEY)) as request_id:
            status, headers, body = self.answer(environ, request_id=request_id)
        headers += self.middleware_headers[secure]
        headers.append((HEADER, request_id))
        start_response(status, headers)
        return EndsTheRequest([body])

    def answer(self, environ: Environ, *, request_id: str) -> tuple[str, Headers, bytes]:
        try:
            total = self.count_hit(self.counter)
        except Exception as exc:
            return self.error(environ, exc, request_id=request_id)
        media_type = self.preferred_type(environ.get("HTTP_ACCEPT"))
        content_type, body = self.render_total(total, media_type=media_type)
        headers = [("Content-Type", content_type), *self.answer_headers]
        headers.append(("Content-Length", str(len(body))))
        return "200 OK", headers, body

    @staticmethod
    def error(environ: Environ, exc: Exception, *, request_id: str) -> tuple[str, Headers, bytes]:
        """Django's own answer to the exception: handler500 (problem+json), logged once."""
        set_script_prefix(get_script_name(environ))
        request = WSGIRequest(environ)
        request.id = request_id
        response = response_for_exception(request, exc)
        response["Content-Length"] = str(len(response.content))
        return (
            f"{response.status_code} {response.reason_phrase}",
            [*response.items()],
            response.content,
        )

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


def middleware_headers(*, secure: bool) -> Headers:
    """The headers the header-only middleware add to an answer of `/`, computed by running them
    once on a sample request and response."""
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
    for middleware in HEADER_MIDDLEWARE:
        if f"{middleware.__module__}.{middleware.__name__}" in settings.MIDDLEWARE:
            middleware(get_response=_not_called).process_response(request, response)
    return [(name, value) for name, value in response.items() if name not in before]


def _not_called(request):
    raise AssertionError("only process_response is used")
