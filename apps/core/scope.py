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
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connections as databases
from django.db.backends.signals import connection_created
from django.dispatch import receiver

from . import database, tracing
from . import request_id as ids

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper


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


class _Opened(threading.local):
    """The database connections this thread opened: Django's wrappers are per thread, and
    `connection_created` is sent in the thread that connects. A thread starts with those it
    holds already (opened before this module was imported)."""

    def __init__(self) -> None:
        self.wrappers: dict[BaseDatabaseWrapper, None] = {
            wrapper: None
            for wrapper in databases.all(initialized_only=True)
            if wrapper.connection is not None
        }


_opened = _Opened()


@receiver(connection_created)
def _remember_opened(*, connection: BaseDatabaseWrapper, **kwargs) -> None:
    _opened.wrappers[connection] = None


def close_old_connections() -> None:
    """What Django's `close_old_connections` does, for the connections this thread opened.

    Django's walks every alias through `connections.all(initialized_only=True)`, two
    thread-local lookups each, and acts only on a wrapper with an open connection; only a
    connection this thread opened can be one, so those are the ones checked (a wrapper that is
    closed is forgotten until it connects again)."""
    wrappers = _opened.wrappers
    if not wrappers:
        return
    for wrapper in list(wrappers):
        wrapper.close_if_unusable_or_obsolete()
        if wrapper.connection is None:
            del wrappers[wrapper]
