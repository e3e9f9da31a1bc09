"""Request-scoped middleware."""

from __future__ import annotations

from django.conf import settings

from .request_id import reset_request_id, sanitize, set_request_id


class RequestIdMiddleware:
    """Give every request an id: the client's `X-Request-ID` when sane, else a new one.

    The id is put on `request.id`, on every log record written while the request is served,
    and on the response's `X-Request-ID` header.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.header = settings.REQUEST_ID_HEADER
        self.meta_key = "HTTP_" + self.header.upper().replace("-", "_")

    def __call__(self, request):
        request_id = sanitize(request.META.get(self.meta_key))
        request.id = request_id
        token = set_request_id(request_id)
        try:
            response = self.get_response(request)
        finally:
            reset_request_id(token)
        response[self.header] = request_id
        return response
