"""Request-scoped middleware."""

from __future__ import annotations

import time

from . import metrics
from .request_id import HEADER, META_KEY
from .scope import request_scope

# The `view` of a request no URL pattern matched (a 404, or a refused host).
UNMATCHED = "unmatched"


class HttpMetricsMiddleware:
    """Count and time every request by view (`dbapi_http_requests_total`,
    `dbapi_http_request_duration_seconds`): the URL pattern's name, never the raw path, so the
    label values stay few whatever clients ask for. The first middleware, so that the time covers
    the others; the fast paths record the same for the requests they answer."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        metrics.record_http(
            view=match.view_name if match is not None else UNMATCHED,
            method=request.method,
            status=response.status_code,
            seconds=time.perf_counter() - started,
        )
        return response


class RequestIdMiddleware:
    """Give every request an id: the client's `X-Request-ID` when sane, else a new one.

    The id is put on `request.id`, on every log record written while the request is served,
    and on the response's `X-Request-ID` header. The request scope is the fast paths' and gRPC's
    (apps.core.scope); Django's own request signals check the database connections here.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with request_scope(request.META.get(META_KEY), connections=False) as request_id:
            request.id = request_id
            response = self.get_response(request)
        response[HEADER] = request_id
        return response


class AllowedHostsMiddleware:
    """Refuse a Host outside ALLOWED_HOSTS (400), as CommonMiddleware does for pages.

    For the API handler's lean middleware, which has no CommonMiddleware: nothing else there
    reads the host, and a request for another host must not be served at all.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.get_host()  # raises DisallowedHost, which Django answers with a 400
        return self.get_response(request)
