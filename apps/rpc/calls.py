"""What every gRPC call gets, as an HTTP request gets it from Django and the middleware.

The request scope every HTTP request gets too (apps.core.scope): a request id (the caller's
`x-request-id` when sane, else a new one) for the logs, sent back in the metadata, and database
connections closed or kept before and after, as CONN_MAX_AGE says; errors answered as statuses
(apps.rpc.errors) with the problem in the trailing metadata; and one log line per call. The
server's interceptor (apps.rpc.handlers) serves every call inside `serving`, on a thread that
keeps its `worker_context` from one call to the next.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Iterator

import grpc

from apps.core import tracing
from apps.core.scope import request_scope

from .errors import status_for_exception
from .idle import WatchedStream
from .metadata import PROBLEM_KEY, REQUEST_ID_KEY

logger = logging.getLogger(__name__)

Metadata = dict[str, str]


def invocation_metadata(context: grpc.ServicerContext) -> Metadata:
    """The call's metadata as a dict (a key sent twice keeps its last value)."""
    return dict(context.invocation_metadata())


@contextlib.contextmanager
def serving(
    context: grpc.ServicerContext, *, method: str, stream: WatchedStream | None = None
) -> Iterator[str]:
    """Serve one call inside this block; yields its request id.

    An exception raised in the block ends the call with the status mapped from it. A stream
    also sends the request id in its initial metadata, so that it is known before the replies.
    """
    metadata = invocation_metadata(context)
    started = time.perf_counter()
    code = grpc.StatusCode.OK
    trace = tracing.grpc_call(method, metadata)
    # No wait for the database outlasts the caller's deadline (time_remaining: None without one).
    with request_scope(
        metadata.get(REQUEST_ID_KEY), within=context.time_remaining(), trace=trace
    ) as request_id:
        try:
            context.set_trailing_metadata(((REQUEST_ID_KEY, request_id),))
            if stream is not None:
                context.send_initial_metadata(((REQUEST_ID_KEY, request_id),))
            yield request_id
            code = context.code() or code  # a servicer may set one (health: NOT_FOUND)
        except GeneratorExit:  # the stream ended early: its client went away, or was idle
            code = grpc.StatusCode.CANCELLED
            if stream is not None and stream.idle_for is not None:
                logger.warning(
                    "Stream cancelled: its client took nothing for %.1f s", stream.idle_for
                )
            raise
        except Exception as exc:
            if not context.is_active():  # cancelled: nobody to answer, and nothing went wrong
                code = grpc.StatusCode.CANCELLED
                context.abort(code, "The call was cancelled.")
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


def worker_context() -> contextvars.Context:
    """The context this worker thread runs its calls in, kept from one call to the next.

    gRPC runs each call in a new, empty contextvars.Context, and Django keeps per-thread state
    there (the cache clients): in a context of their own, every call would build a new Redis
    client, as a gunicorn worker, whose requests share one context, never does.
    """
    context = getattr(_worker, "context", None)
    if context is None:
        context = _worker.context = contextvars.Context()
    return context
