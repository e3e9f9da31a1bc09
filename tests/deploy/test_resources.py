"""deploy/k8s's memory requests and limits, checked against the memory the processes take after
load, measured here (bench/memory.py): gunicorn with the ConfigMap's WEB_CONCURRENCY workers and
the gRPC server, on the test database, after every kind of request."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from bench.memory import (
    MIB,
    configured_workers,
    container_memory,
    measure_grpc,
    measure_web,
    quantity_bytes,
)
from tests.servers import project_env

# Room above the measured figure: the request, for what the scheduler must reserve (a worker
# grows with the largest body and result it has held, up to ACTIONS_MAX_BODY and beyond); the
# limit, before the kernel kills the container.
REQUEST_MARGIN = 1.25
LIMIT_MARGIN = 2.0
ROUNDS = 12


@pytest.fixture
def api_key() -> str:
    out = io.StringIO()
    call_command("create_api_client", "memory-measure", stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def server_env() -> dict[str, str]:
    """As deployed in what matters for memory: DEBUG off (no query log kept per request)."""
    return project_env(DEBUG="false", LOG_LEVEL="WARNING")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_web_memory_covers_its_workers_and_master_with_margin(api_key):
    workers = configured_workers()
    measured = measure_web(server_env(), api_key, workers=workers, rounds=ROUNDS)
    assert len(measured.workers) == workers
    assert min(measured.workers) > 20 * MIB  # a Django worker: the measurement is real
    needed = measured.for_workers(workers)
    request, limit = container_memory("web.yaml", "web")
    assert request >= REQUEST_MARGIN * needed, (request / MIB, needed / MIB, measured)
    assert limit >= LIMIT_MARGIN * needed, (limit / MIB, needed / MIB)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_grpc_memory_covers_the_server_with_margin(api_key):
    measured = measure_grpc(server_env(), api_key, calls=ROUNDS)
    assert measured > 20 * MIB
    request, limit = container_memory("grpc.yaml", "grpc")
    assert request >= REQUEST_MARGIN * measured, (request / MIB, measured / MIB)
    assert limit >= LIMIT_MARGIN * measured, (limit / MIB, measured / MIB)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [("512Mi", 512 * MIB), ("1Gi", 1024 * MIB), ("128M", 128 * 10**6), ("1048576", MIB)],
)
def test_memory_quantities_are_read_as_kubernetes_does(quantity, expected):
    assert quantity_bytes(quantity) == expected
