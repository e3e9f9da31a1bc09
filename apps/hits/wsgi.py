"""The WSGI fast path of `GET /` (`apps.core.wsgi.FastPaths`), as whitenoise is for static files.

`GET /` is the busiest and cheapest request: one Redis script. Through Django's handler it would
pay several times that for URL resolving, request and response objects and the middleware, most
of which (sessions, CSRF, auth, messages) do nothing for it. The tests compare its answers with
Django's whole stack.
"""

from __future__ import annotations

from apps.core.wsgi import Answer, Environ, FastRoute

from .services import ROOT_COUNTER, count_hit
from .views import ANSWER_HEADERS, preferred_type, render_total


class HitsRoute(FastRoute):
    name = "hits"
    middleware_setting = "MIDDLEWARE"  # `/` is a page's path, behind every middleware
    # What the middleware that the fast path does not reproduce does for `GET /`: nothing.
    does_nothing = {
        "whitenoise.middleware.WhiteNoiseMiddleware": "it serves /static/ only",
        "django.contrib.sessions.middleware.SessionMiddleware": "/ reads no session",
        "apps.core.languages.LocaleMiddleware": "/ answers in no language (language_neutral)",
        "django.middleware.csrf.CsrfViewMiddleware": "/ is a GET, and exempt",
        "django.contrib.auth.middleware.AuthenticationMiddleware": "/ reads no user",
        "django_otp.middleware.OTPMiddleware": "/ reads no user",
        "django.contrib.messages.middleware.MessageMiddleware": "/ shows no message",
    }

    def match(self, environ: Environ) -> bool | None:
        return (environ["REQUEST_METHOD"] == "GET" and environ.get("PATH_INFO") == "/") or None

    def view_name(self, match: bool) -> str:
        return "hits:root"

    def answer(self, environ: Environ, match: bool) -> Answer:
        total = count_hit(ROOT_COUNTER)
        content_type, body = render_total(
            total, media_type=preferred_type(environ.get("HTTP_ACCEPT"))
        )
        headers = [
            ("Content-Type", content_type),
            *ANSWER_HEADERS,
            ("Content-Length", str(len(body))),
        ]
        return Answer(status=200, headers=headers, body=[body])
