"""A WSGI fast path for `GET /`, in front of Django's handler (as whitenoise is for static files).

`GET /` is the busiest and cheapest request: one Redis script. Through Django's handler it would
pay several times that for URL resolving, request and response objects and the middleware, most
of which (sessions, CSRF, auth, messages) do nothing for it. `apps.core.wsgi.FastPath` answers it
at the WSGI level with what the middleware and the handler would have done.

Every other request goes to Django untouched. The tests compare its answers with Django's; a
middleware it does not know about turns it off (see ACCOUNTED_FOR).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings

from apps.core.wsgi import Answer, Environ, FastPath

logger = logging.getLogger(__name__)

# What each middleware does for `GET /`, and how the fast path does it. A middleware missing from
# here turns the fast path off, until someone checks what it does for `/` and adds it.
ACCOUNTED_FOR = {
    "apps.core.middleware.RequestIdMiddleware": "the request id, set here the same way",
    "django.middleware.security.SecurityMiddleware": "headers; HTTPS redirects go to Django",
    "csp.middleware.CSPMiddleware": "a header, the policy: / uses no nonce (it renders no page)",
    "whitenoise.middleware.WhiteNoiseMiddleware": "nothing: it serves /static/ only",
    "django.contrib.sessions.middleware.SessionMiddleware": "nothing: / reads no session",
    "django.middleware.common.CommonMiddleware": "Content-Length; refused hosts go to Django",
    "django.middleware.csrf.CsrfViewMiddleware": "nothing: / is a GET, and exempt",
    "django.contrib.auth.middleware.AuthenticationMiddleware": "nothing: / reads no user",
    "django_otp.middleware.OTPMiddleware": "nothing: / reads no user",
    "django.contrib.messages.middleware.MessageMiddleware": "nothing: / shows no message",
    "django.middleware.clickjacking.XFrameOptionsMiddleware": "a header",
}


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


class HitsFastPath(FastPath):
    """Answer `GET /` at the WSGI level, as Django would; pass every other request on."""

    def __init__(self, application: Callable):
        # Here, not at the top: config/wsgi.py imports this module before Django is set up.
        from .services import ROOT_COUNTER, count_hit
        from .views import ANSWER_HEADERS, preferred_type, render_total

        super().__init__(application, middleware=settings.MIDDLEWARE)
        self.counter, self.count_hit = ROOT_COUNTER, count_hit
        self.answer_headers, self.preferred_type = ANSWER_HEADERS, preferred_type
        self.render_total = render_total

    def route(self, environ: Environ) -> bool | None:
        return (environ["REQUEST_METHOD"] == "GET" and environ.get("PATH_INFO") == "/") or None

    def answer(self, environ: Environ, route: bool, *, request_id: str) -> Answer:
        total = self.count_hit(self.counter)
        media_type = self.preferred_type(environ.get("HTTP_ACCEPT"))
        content_type, body = self.render_total(total, media_type=media_type)
        headers = [("Content-Type", content_type), *self.answer_headers]
        headers.append(("Content-Length", str(len(body))))
        return "200 OK", headers, body
