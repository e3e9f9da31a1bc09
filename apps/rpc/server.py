"""The gRPC server: the actions, the original api.Api, health checking and reflection.

`build_server()` makes it, in one place (the tests use it on a free port); `serve()` is what
`manage.py grpcserver` runs until SIGTERM or SIGINT, then stops gracefully: new calls are
refused, health answers NOT_SERVING, and calls in flight get GRPC_GRACE_SECONDS to finish.

No caller, with a key or without, can hold the server: unary calls, streams and health checks
each have threads of their own (apps.rpc.handlers), a call past its kind's threads is refused at
once, and a stream whose client stops reading is cancelled (apps.rpc.idle).
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass

import grpc
from django.conf import settings
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from protos.api import api_pb2, api_pb2_grpc
from protos.dbapi.v1 import actions_pb2, actions_pb2_grpc

from .actions_service import ActionsServicer
from .demo_service import ApiServicer
from .handlers import ServedCalls
from .idle import IdleStreams
from .workers import Workers

logger = logging.getLogger(__name__)

SERVICES = (
    actions_pb2.DESCRIPTOR.services_by_name["Actions"].full_name,  # dbapi.v1.Actions
    api_pb2.DESCRIPTOR.services_by_name["Api"].full_name,  # api.Api
)

# Threads answering health checks, and refusing calls past capacity: never taken by calls, so a
# probe is answered however busy the server is (a probe that times out gets the pod restarted).
PROBE_THREADS = 2
# Calls that may wait for those threads. Past them (a flood of calls being refused) grpcio
# refuses new calls itself, at once and without a thread: RESOURCE_EXHAUSTED with no problem.
PROBE_BACKLOG = 100

# Ping a client whose connection has been silent this long, and drop the connection (cancelling
# its calls) when the ping is not answered in time: a client that vanished without closing it.
KEEPALIVE_MS = 60_000
KEEPALIVE_TIMEOUT_MS = 20_000


@dataclass
class Server:
    """A built server, not yet started."""

    grpc_server: grpc.Server
    health: health.HealthServicer
    port: int
    workers: tuple[Workers, ...]
    idle: IdleStreams

    def start(self) -> None:
        self.idle.start()
        self.grpc_server.start()

    def stop(self, *, grace: float) -> None:
        """Refuse new calls, wait for those in flight (at most `grace` seconds, then they are
        cancelled), then end the threads, each closing its database connections."""
        self.health.enter_graceful_shutdown()  # every service NOT_SERVING
        self.grpc_server.stop(grace).wait()
        self.idle.stop()
        for workers in self.workers:
            workers.stop()


def build_server(*, bind: str, workers: int) -> Server:
    """The server listening on `bind` (host:port; port 0 picks a free one): `workers` threads
    for unary calls, GRPC_MAX_STREAMS for streams.

    Request messages larger than ACTIONS_MAX_BODY are refused with RESOURCE_EXHAUSTED before
    they are read, as the HTTP API refuses such a body with 413.
    """
    calls = Workers(workers, name="grpc")
    streams = Workers(settings.GRPC_MAX_STREAMS, name="grpc-stream")
    probes = Workers(PROBE_THREADS, name="grpc-probe")
    idle = IdleStreams(timeout=settings.GRPC_STREAM_IDLE_TIMEOUT)
    health_servicer = health.HealthServicer()
    server = grpc.server(
        calls,
        interceptors=[
            ServedCalls(
                calls=calls,
                streams=streams,
                probes=probes,
                probe_services={health.SERVICE_NAME},
                idle=idle,
            )
        ],
        options=[
            ("grpc.max_receive_message_length", settings.ACTIONS_MAX_BODY),
            # A second server on the same port fails to start instead of sharing its calls.
            ("grpc.so_reuseport", 0),
            ("grpc.keepalive_time_ms", KEEPALIVE_MS),
            ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        ],
        maximum_concurrent_rpcs=calls.size + streams.size + PROBE_BACKLOG,
    )
    actions_pb2_grpc.add_ActionsServicer_to_server(ActionsServicer(), server)
    api_pb2_grpc.add_ApiServicer_to_server(ApiServicer(), server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in ("", *SERVICES):  # "" is the whole server, what Kubernetes probes ask
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    try:
        port = server.add_insecure_port(bind)
    except RuntimeError as exc:  # grpc's way of saying the address is taken or invalid
        raise OSError(f"Cannot listen on {bind}: is it in use, or not an address here?") from exc
    return Server(
        grpc_server=server,
        health=health_servicer,
        port=port,
        workers=(calls, streams, probes),
        idle=idle,
    )


def serve(*, bind: str, workers: int, grace: float) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully."""
    server = build_server(bind=bind, workers=workers)
    stopping = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    server.start()
    logger.info(
        "gRPC server listening on %s",
        bind,
        extra={
            "bind": bind,
            "port": server.port,
            "workers": workers,
            "max_streams": settings.GRPC_MAX_STREAMS,
        },
    )
    while not stopping.wait(timeout=1):  # a timed wait lets the signal handler run promptly
        pass
    logger.info("gRPC server stopping; calls in flight get %ss to finish", grace)
    server.stop(grace=grace)
    logger.info("gRPC server stopped")
