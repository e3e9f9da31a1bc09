"""What every request or call is served inside, whatever its transport: one request scope.

Django's handler (through RequestIdMiddleware), the WSGI fast paths and the gRPC server all serve
a request inside `request_scope`: it gives the request its id (for the answer, every log line and
every outgoing call), serves it in its trace (apps.core.tracing: a server span continuing the
caller's `traceparent`, for what Django's tracing middleware does not see), bounds its waits for
the database (DB_TIMEOUT, apps.core.database), and checks the database connections before and
after, closing those that are broken or past CONN_MAX_AGE, as Django's
`request_started`/`request_finished` receivers do. A control that belongs to a whole request is
added here, once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.conf import settings

# Django's own, over every connection the thread holds: `connection_created` is sent only once a
# connection is set up, so one lost during its set-up is known to no receiver, and must be closed
# all the same (tests/core/test_request_scope.py).
from django.db import close_old_connections

from . import database, tracing
from . import request_id as ids


@contextlib.contextmanager
def request_scope(
    request_id: str | None,
    *,
    connections: bool = True,
    within: float | None = None,
    trace: tracing.Incoming | None = None,
) -> Iterator[str]:
    """Serve one request or call inside the block; yields its id (`request_id` when sane, else a
    new one). `connections=False` leaves the connections to Django's handler, whose request
    signals already check them around a request it serves. `within`: seconds the caller waits
    for the answer (a gRPC deadline), when it says; no wait for the database lasts longer.
    `trace`: the server span to serve it in, for what Django's tracing middleware does not see
    (fast paths, gRPC)."""
    # One generator for the whole scope (the id and the span inline): it wraps every request.
    with database.timeout(settings.DB_TIMEOUT, within=within):
        if connections:
            close_old_connections()
        scoped_id, token = ids.enter(request_id)
        try:
            if trace is None:
                yield scoped_id
            else:
                with tracing.server_span(trace):
                    yield scoped_id
        finally:
            ids.leave(token)
            if connections:
                close_old_connections()
