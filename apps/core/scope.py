"""What every request or call is served inside, whatever its transport: one request scope.

Django's handler (through RequestIdMiddleware), the WSGI fast paths and the gRPC server all serve
a request inside `request_scope`: it gives the request its id (for the answer, every log line and
every outgoing call), serves it in its trace (apps.core.tracing: a server span continuing the
caller's `traceparent`, for what Django's tracing middleware does not see) and checks the database
connections before and after, closing those that are broken or past CONN_MAX_AGE, as Django's
`request_started`/`request_finished` receivers do. Later controls that belong to a whole request
(a deadline) are added here, once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import close_old_connections

from . import tracing
from .request_id import request_id_scope


@contextlib.contextmanager
def request_scope(
    request_id: str | None, *, connections: bool = True, trace: tracing.Incoming | None = None
) -> Iterator[str]:
    """Serve one request or call inside the block; yields its id (`request_id` when sane, else a
    new one). `connections=False` leaves the connections to Django's handler, whose request
    signals already check them around a request it serves. `trace`: the server span to serve it
    in, for what Django's tracing middleware does not see (fast paths, gRPC)."""
    if connections:
        close_old_connections()
    try:
        with request_id_scope(request_id) as scoped_id, tracing.server_span(trace):
            yield scoped_id
    finally:
        if connections:
            close_old_connections()
