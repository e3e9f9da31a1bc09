"""The gRPC server: the actions, the original api.Api, health checking and reflection.

`build_server()` makes it (the tests use it on a free port); `serve()` is what
`manage.py grpcserver` runs until SIGTERM or SIGINT, then stops gracefully: new calls are
refused, health answers NOT_SERVING, and calls in flight get GRPC_GRACE_SECONDS to finish.
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from dataclasses import dataclass

import grpc
from django.conf import settings
from django.db import connections
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from protos.api import api_pb2, api_pb2_grpc
from protos.dbapi.v1 import actions_pb2, actions_pb2_grpc

from .actions_service import ActionsServicer
from .demo_service import ApiServicer
from .pool import CallPool

logger = logging.getLogger(__name__)

SERVICES = (
    actions_pb2.DESCRIPTOR.services_by_name["Actions"].full_name,  # dbapi.v1.Actions
    api_pb2.DESCRIPTOR.services_by_name["Api"].full_name,  # api.Api
)


@dataclass
class Server:
    """A built server, not yet started."""

    grpc_server: grpc.Server
    health: health.HealthServicer
    port: int
    pool: CallPool

    def start(self) -> None:
        self.grpc_server.start()

    def stop(self, *, grace: float) -> None:
        """Refuse new calls, wait for those in flight (at most `grace` seconds), then end the
        workers, each closing its database connections."""
        self.health.enter_graceful_shutdown()  # every service NOT_SERVING
        self.grpc_server.stop(grace).wait()
        self.pool.shutdown(wait=True)


def build_server(*, bind: str, workers: int) -> Server:
    """The server listening on `bind` (host:port; port 0 picks a free one), `workers` threads.

    Request messages larger than ACTIONS_MAX_BODY are refused with RESOURCE_EXHAUSTED before
    they are read, as the HTTP API refuses such a body with 413.
    """
    # Django's connections belong to the thread that opened them: each worker closes its own
    # when it ends, so that they end cleanly rather than dropping when the process exits (and a
    # test database can be dropped after).
    pool = CallPool(workers, thread_name_prefix="grpc", on_exit=connections.close_all)
    server = grpc.server(
        pool,
        options=[
            ("grpc.max_receive_message_length", settings.ACTIONS_MAX_BODY),
            # A second server on the same port fails to start instead of sharing its calls.
            ("grpc.so_reuseport", 0),
        ],
    )
    actions_pb2_grpc.add_ActionsServicer_to_server(ActionsServicer(), server)
    api_pb2_grpc.add_ApiServicer_to_server(ApiServicer(), server)
    health_servicer = _health_servicer()
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
    return Server(grpc_server=server, health=health_servicer, port=port, pool=pool)


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
        extra={"bind": bind, "port": server.port, "workers": workers},
    )
    while not stopping.wait(timeout=1):  # a timed wait lets the signal handler run promptly
        pass
    logger.info("gRPC server stopping; calls in flight get %ss to finish", grace)
    server.stop(grace=grace)
    logger.info("gRPC server stopped")


def _health_servicer() -> health.HealthServicer:
    """Health checking on threads of its own, so that probes are answered even while every
    worker is busy with long calls (a probe that times out gets the pod restarted)."""
    pool = futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="grpc-health")
    servicer = health.HealthServicer(experimental_thread_pool=pool)  # for Watch
    check = servicer.Check

    def Check(request, context):
        return check(request, context)

    Check.experimental_thread_pool = pool  # how grpc picks a method's thread pool
    servicer.Check = Check
    return servicer
