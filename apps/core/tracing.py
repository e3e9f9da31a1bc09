"""OpenTelemetry traces: off unless OTEL_EXPORTER_OTLP_ENDPOINT is set, and then set up once per
process (`configure`, from the core app's `ready`) with the maintained instrumentations.

What each piece traces:

- Django's instrumentation: requests Django's handlers serve (its middleware, in MIDDLEWARE and
  API_MIDDLEWARE), continuing an incoming W3C `traceparent` and answering `traceresponse`.
- The request scope (`server_span`): what Django's handler never sees, the WSGI fast paths and
  gRPC calls, with the same continuation and answer.
- psycopg2: a span per SQL statement, and the statement carries its `traceparent` as a
  sqlcommenter comment, so `pg_stat_activity` and PostgreSQL's logs show the trace.
- redis, httpx (upstreams) and grpc clients: spans, and the trace passed on to what they call.

Spans leave through a BatchSpanProcessor: its queue is bounded (OTEL_BSP_MAX_QUEUE_SIZE), so a
collector that is down costs dropped spans, never a failed request or memory without end.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

# The Django instrumentation's middleware, as its name appears in the middleware settings.
DJANGO_MIDDLEWARE = (
    "opentelemetry.instrumentation.django.middleware.otel_middleware._DjangoMiddleware"
)
# What a statement's comment carries: the trace, not the driver's versions (whose URL-encoded
# values would put `%` into statements that psycopg2 formats with parameters).
SQL_COMMENT = {
    "db_driver": False,
    "dbapi_threadsafety": False,
    "dbapi_level": False,
    "libpq_version": False,
    "driver_paramstyle": False,
    "opentelemetry_values": True,
}

# The gRPC codes that are the server's failure, not the caller's (OpenTelemetry's conventions).
GRPC_SERVER_ERRORS = frozenset(
    {"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"}
)

_lock = threading.Lock()
_tracer = None  # the project's tracer once configured; None: tracing is off


def is_on() -> bool:
    return _tracer is not None


def configure() -> None:
    """Set up the SDK, the OTLP exporter and the instrumentations, once; nothing when
    OTEL_EXPORTER_OTLP_ENDPOINT is unset. Before Django's handlers load their middleware."""
    global _tracer
    if not settings.OTEL_EXPORTER_OTLP_ENDPOINT:
        return
    with _lock:
        if _tracer is not None:
            return
        # Imported here: with tracing off, no process pays for loading the SDK.
        from opentelemetry import trace
        from opentelemetry.instrumentation.django import DjangoInstrumentor
        from opentelemetry.instrumentation.grpc import GrpcInstrumentorClient
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.propagators import (
            TraceResponsePropagator,
            set_global_response_propagator,
        )
        from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(
            resource=Resource.create({SERVICE_NAME: settings.OTEL_SERVICE_NAME}),
            shutdown_on_exit=False,  # _shut_down bounds the wait instead
        )
        provider.add_span_processor(BatchSpanProcessor(_span_exporter()))
        atexit.register(_shut_down, provider)
        trace.set_tracer_provider(provider)
        set_global_response_propagator(TraceResponsePropagator())
        DjangoInstrumentor().instrument()  # its middleware first in MIDDLEWARE
        if DJANGO_MIDDLEWARE not in settings.API_MIDDLEWARE:  # and in the API handler's
            settings.API_MIDDLEWARE = [DJANGO_MIDDLEWARE, *settings.API_MIDDLEWARE]
        Psycopg2Instrumentor().instrument(
            enable_commenter=True, commenter_options=SQL_COMMENT, skip_dep_check=True
        )
        RedisInstrumentor().instrument()
        HTTPXClientInstrumentor().instrument()
        GrpcInstrumentorClient().instrument()
        _tracer = trace.get_tracer("dbapi")


def _span_exporter() -> Any:
    """OTLP over gRPC, or over HTTP with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf (to the
    endpoint's /v1/traces, as the specification builds a signal's URL from the base one)."""
    endpoint = settings.OTEL_EXPORTER_OTLP_ENDPOINT
    if settings.OTEL_EXPORTER_OTLP_PROTOCOL == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint)


def _shut_down(provider: Any) -> None:
    """Send the spans still queued as the process exits, waiting at most OTEL_EXPORTER_OTLP_TIMEOUT.

    The SDK's own exit handler would export the whole queue batch after batch, each retried up
    to the timeout, so a stopping worker could outlast gunicorn's graceful timeout (and hold its
    database connection) while the collector is down; what is not sent by then is dropped.
    """
    sending = threading.Thread(target=provider.shutdown, name="otel-shutdown", daemon=True)
    sending.start()
    sending.join(settings.OTEL_EXPORTER_OTLP_TIMEOUT)


@dataclass(frozen=True)
class Incoming:
    """A request or call about to be served, as its server span needs it."""

    name: str
    carrier: Mapping[str, Any]  # where an incoming `traceparent` is read from
    attributes: dict[str, Any] = field(default_factory=dict)
    wsgi: bool = False  # the carrier is a WSGI environ (HTTP_TRACEPARENT)


def http_request(environ: Mapping[str, Any], *, view: str) -> Incoming | None:
    """A request a WSGI fast path serves; None when tracing is off."""
    if _tracer is None:
        return None
    method = environ.get("REQUEST_METHOD", "")
    return Incoming(
        name=f"{method} {view}",
        carrier=environ,
        attributes={
            "http.request.method": method,
            "url.path": environ.get("PATH_INFO", ""),
            "url.scheme": environ.get("wsgi.url_scheme", "http"),
            "http.route": view,
        },
        wsgi=True,
    )


def grpc_call(method: str, metadata: Mapping[str, str]) -> Incoming | None:
    """A gRPC call (`/package.Service/Method`); None when tracing is off."""
    if _tracer is None:
        return None
    service, _, name = method.lstrip("/").rpartition("/")
    return Incoming(
        name=method.lstrip("/"),
        carrier=metadata,
        attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
    )


@contextlib.contextmanager
def server_span(incoming: Incoming | None) -> Iterator[None]:
    """Serve the block inside a server span that continues the incoming trace, if any."""
    if incoming is None or _tracer is None:
        yield
        return
    from opentelemetry import trace
    from opentelemetry.instrumentation.wsgi import wsgi_getter
    from opentelemetry.propagate import extract

    parent = (
        extract(incoming.carrier, getter=wsgi_getter)
        if incoming.wsgi
        else extract(incoming.carrier)
    )
    with _tracer.start_as_current_span(
        incoming.name,
        context=parent,
        kind=trace.SpanKind.SERVER,
        attributes=incoming.attributes,
    ):
        yield


def answered(*, status: int | None = None, grpc_code: str | None = None) -> list[tuple[str, str]]:
    """Record the answer on the current server span; returns the `traceresponse` header to send
    with it (nothing when tracing is off)."""
    if _tracer is None:
        return []
    from opentelemetry import trace
    from opentelemetry.instrumentation.propagators import get_global_response_propagator

    span = trace.get_current_span()
    if status is not None:
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(trace.StatusCode.ERROR)
    if grpc_code is not None:
        span.set_attribute("rpc.grpc.status_code", grpc_code)
        if grpc_code in GRPC_SERVER_ERRORS:
            span.set_status(trace.StatusCode.ERROR)
    headers: dict[str, str] = {}
    propagator = get_global_response_propagator()
    if propagator is not None:
        propagator.inject(headers)
    return list(headers.items())


class OpenSpan:
    """A span made current until `end`: for work that does not fit one block (a stream, read
    after the call that starts it has returned)."""

    def __init__(self, span: Any, token: object):
        self.span = span
        self.token = token

    def end(self, *, error: bool = False, **attributes: Any) -> None:
        from opentelemetry import context, trace

        self.span.set_attributes(attributes)
        if error:
            self.span.set_status(trace.StatusCode.ERROR)
        self.span.end()
        context.detach(self.token)


def start_span(name: str, **attributes: Any) -> OpenSpan | None:
    """An internal span, current from now until its `end`; None when tracing is off."""
    if _tracer is None:
        return None
    from opentelemetry import context, trace

    span = _tracer.start_span(name, attributes=attributes)
    return OpenSpan(span, context.attach(trace.set_span_in_context(span)))


def annotate(**attributes: Any) -> None:
    """Add attributes to the current span (nothing when tracing is off)."""
    if _tracer is not None:
        from opentelemetry import trace

        trace.get_current_span().set_attributes(attributes)


def log_fields() -> dict[str, str]:
    """`trace_id` and `span_id` of the current span, for a log line; empty outside one."""
    if _tracer is None:
        return {}
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
    }
