"""The image's HEALTHCHECK: `python deploy/healthcheck.py [http|grpc]`, exit 0 when healthy.

`http` (the default) asks gunicorn for /health/live, with a Host header that ALLOWED_HOSTS
accepts: Django answers any other host with 400, and the image has no curl to set one.
`grpc` asks the gRPC server's standard health service about the whole server (service "").
Only the standard library is used for `http`; nothing of Django is imported, so a check costs
milliseconds, not a Django start-up.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 3.0


def allowed_host() -> str:
    """A host name Django accepts: the first usable entry of ALLOWED_HOSTS."""
    for entry in os.environ.get("ALLOWED_HOSTS", "").split(","):
        name = entry.strip().lstrip(".")  # ".example.com" also allows example.com itself
        if name and name != "*":
            return name
    return "localhost"


def local_address(bind: str, default_port: str) -> str:
    """Where to reach a server bound to `bind` from inside its own container."""
    host, _, port = bind.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):  # noqa: S104 (read, not bound)
        host = "127.0.0.1"
    return f"{host}:{port or default_port}"


def check_http() -> bool:
    address = local_address(os.environ.get("GUNICORN_BIND", "0.0.0.0:8000"), "8000")
    request = urllib.request.Request(
        f"http://{address}/health/live", headers={"Host": allowed_host()}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return response.status == 200
    except (urllib.error.URLError, OSError) as exc:
        sys.stderr.write(f"healthcheck: {exc}\n")
        return False


def check_grpc() -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    address = local_address(os.environ.get("GRPC_BIND", "0.0.0.0:50051"), "50051")
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT_SECONDS)
        except grpc.RpcError as exc:
            sys.stderr.write(f"healthcheck: {exc.code()}\n")
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


CHECKS = {"http": check_http, "grpc": check_grpc}

if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else "http"
    sys.exit(0 if CHECKS[kind]() else 1)
