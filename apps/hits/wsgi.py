"""A WSGI fast path for `GET /`, in front of Django's handler (as whitenoise is for static files).

`GET /` is the busiest and cheapest request: one Redis script. Through the whole handler it
would also pay for URL resolving and for the sessions, CSRF, auth and messages middleware, which do
nothing for it. The fast path builds the same request and response objects and runs the same view
behind the middleware `/` does need, so the answer is the one Django gives (same headers, request
id, problem+json errors, JSON logs); every other request goes to Django untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.conf import settings
from django.core import signals
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIRequest, get_script_name
from django.urls import set_script_prefix
from django.utils.module_loading import import_string

# What `/` needs from settings.MIDDLEWARE: the request id, the security headers, host validation
# and Content-Length, X-Frame-Options. Run in the order settings.MIDDLEWARE gives them.
FAST_PATH_MIDDLEWARE = {
    "apps.core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
}


def hits_fast_path(application: Callable) -> Callable:
    """Wrap the Django WSGI application with the fast path, unless HITS_FAST_PATH is off."""
    return HitsFastPath(application) if settings.HITS_FAST_PATH else application


class HitsFastPath:
    """Answer `GET /` with the hits view behind a short middleware chain; pass the rest on."""

    def __init__(self, application: Callable):
        from .views import root  # here, not at the top: config/wsgi.py imports us before setup

        self.application = application
        self.handler = self._chain(root)

    @staticmethod
    def _chain(view: Callable) -> Callable:
        # As BaseHandler.load_middleware does: each layer turns exceptions into responses, so a
        # failing view still answers through every middleware (request id, headers).
        handler = convert_exception_to_response(view)
        for path in reversed(settings.MIDDLEWARE):
            if path in FAST_PATH_MIDDLEWARE:
                handler = convert_exception_to_response(import_string(path)(handler))
        return handler

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] != "GET" or environ.get("PATH_INFO") != "/":
            return self.application(environ, start_response)
        # What WSGIHandler.__call__ does around the handler, so that request_started and
        # request_finished (on close) still manage the database connections.
        set_script_prefix(get_script_name(environ))
        signals.request_started.send(sender=self.__class__, environ=environ)
        response = self.handler(WSGIRequest(environ))
        response._handler_class = self.__class__
        headers = [
            *response.items(),
            *(("Set-Cookie", cookie.output(header="")) for cookie in response.cookies.values()),
        ]
        start_response(f"{response.status_code} {response.reason_phrase}", headers)
        return response
