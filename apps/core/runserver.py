"""The development server's request lines, carrying the request id the response went out with.

Django's development server logs each request (`django.server`) once the response is sent,
outside the request's scope and with the socket as `record.request`, so the line said
`"request_id": null`. The server here notes the id of the answer its thread just sent (one
request at a time per connection thread) and writes the request line inside that id's scope.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer

from .request_id import HEADER, request_id_scope

_answered = threading.local()  # .request_id: the id of the answer this thread last sent


class RequestIdWSGIServer(WSGIServer):
    """Django's development server, with RequestIdRequestHandler for every connection."""

    def __init__(self, server_address, handler_class, *args, **kwargs):
        super().__init__(server_address, RequestIdRequestHandler, *args, **kwargs)

    def set_app(self, application: Callable) -> None:
        super().set_app(noting_request_ids(application))


class RequestIdRequestHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:
        # Taken, not read: it is not for a line about the next request.
        request_id, _answered.request_id = getattr(_answered, "request_id", None), None
        if request_id is None:  # no answer went out (a request line it could not parse)
            super().log_message(format, *args)
            return
        with request_id_scope(request_id):
            super().log_message(format, *args)


def noting_request_ids(application: Callable) -> Callable:
    """Wrap a WSGI application so the thread notes the X-Request-ID each answer carries."""
    header = HEADER.lower()

    def noting(environ: dict, start_response: Callable) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info=None):
            _answered.request_id = next((v for k, v in headers if k.lower() == header), None)
            return start_response(status, headers, exc_info)

        return application(environ, start)

    return noting
