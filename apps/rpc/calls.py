"""What every gRPC call gets, as an HTTP request gets it from Django and the middleware.

The request scope every HTTP request gets too (apps.core.scope): a request id (the caller's
`x-request-id` when sane, else a new one) for the logs, sent back in the metadata, and database
connections closed or kept before and after, as CONN_MAX_AGE says; errors answered as statuses
(apps.rpc.errors) with the problem in the trailing metadata; and one log line per call.
Servicer methods get all this from the `unary` and `streaming` decorators, and the call's
metadata as a dict.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from apps.core import tracing
from apps.core.scope import request_scope

from .errors import status_for_exception
from .metadata import PROBLEM_KEY, REQUEST_ID_KEY

logger = logging.getLogger(__name__)

Metadata = dict[str, str]


def unary(method: str) -> Callable:
    """Decorate a servicer method answering one message: `(self, request, context, *, metadata)`."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        def served(self, request, context: grpc.ServicerContext) -> Any:
            with serving(context, method=method) as metadata:
                return func(self, request, context, metadata=metadata)

        @functools.wraps(func)
        def handler(self, request, context: grpc.ServicerContext) -> Any:
            return _worker_context().run(served, self, request, context)

        return handler

    return decorate


def streaming(method: str) -> Callable:
    """Decorate a servicer method yielding messages: `(self, request, context, *, metadata)`."""

    def decorate(func: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        def served(self, request, context: grpc.ServicerContext) -> Iterator[Any]:
            with serving(context, method=method, streaming=True) as metadata:
                yield from func(self, request, context, metadata=metadata)

        @functools.wraps(func)
        def handler(self, request, context: grpc.ServicerContext) -> Iterator[Any]:
            run = _worker_context().run
            messages = run(served, self, request, context)
            try:
                while True:
                    try:
                        message = run(next, messages)
                    except StopIteration:
                        return
                    yield message
            finally:  # also when the client goes away: ends the transaction now
                run(messages.close)

        return handler

    return decorate


@contextlib.contextmanager
def serving(
    context: grpc.ServicerContext, *, method: str, streaming: bool = False
) -> Iterator[Metadata]:
    """Serve one call inside this block; yields the call's metadata as a dict.

    An exception raised in the block ends the call with the status mapped from it. A streaming
    call also sends the request id in its initial metadata, so it is known before the rows.
    """
    metadata = dict(context.invocation_metadata())
    started = time.perf_counter()
    code = grpc.StatusCode.OK
    trace = tracing.grpc_call(method, metadata)
    # No wait for the database outlasts the caller's deadline (time_remaining: None without one).
    with request_scope(
        metadata.get(REQUEST_ID_KEY), within=context.time_remaining(), trace=trace
    ) as request_id:
        try:
            context.set_trailing_metadata(((REQUEST_ID_KEY, request_id),))
            if streaming:
                context.send_initial_metadata(((REQUEST_ID_KEY, request_id),))
            yield metadata
        except GeneratorExit:  # the client went away in the middle of a stream
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as exc:
            status = status_for_exception(exc)
            code = status.code
            context.set_trailing_metadata(
                ((REQUEST_ID_KEY, request_id), (PROBLEM_KEY, status.problem), *status.metadata)
            )
            context.abort(status.code, status.details)
        finally:
            tracing.answered(grpc_code=code.name)
            if logger.isEnabledFor(logging.INFO):  # the access line, as gunicorn writes one
                # The message comes formatted: with no arguments, the log filters look at one
                # string rather than each argument (a fifth of the line's cost).
                logger.info(
                    f"{method} {code.name}",
                    extra={
                        "grpc_method": method,
                        "grpc_code": code.name,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )


_worker = threading.local()


def _worker_context() -> contextvars.Context:
    """The context this worker thread runs its calls in, kept from one call to the next.

    gRPC runs each call in a new, empty contextvars.Context, and Django keeps per-thread state
    there (the cache clients): in a context of their own, every call would build a new Redis
    client, as a gunicorn worker, whose requests share one context, never does.
    """
    context = getattr(_worker, "context", None)
    if context is None:
        context = _worker.context = contextvars.Context()
    return context
