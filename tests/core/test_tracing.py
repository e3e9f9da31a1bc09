"""Traces: with OTEL_EXPORTER_OTLP_ENDPOINT set, a call continues the caller's `traceparent`
through the server span, the action and each SQL statement, and a real OTLP receiver gets them;
with the collector down nothing fails."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from django.db import connection

from apps.actions.clients import create_api_client
from apps.rpc.values import to_struct
from protos.dbapi.v1 import actions_pb2, actions_pb2_grpc
from tests.otlp import otlp_http_receiver, otlp_receiver
from tests.rpc.test_server import GrpcServerProcess
from tests.servers import (
    free_port,
    gunicorn,
    peak_rss_kib,
    project_env,
    wait_until,
    worker_pid,
)
from tests.test_settings import clean_env, run_python

pytestmark = pytest.mark.django_db(transaction=True)


def traceparent() -> tuple[str, str, str]:
    """A caller's trace: (header, trace id, its span id)."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def post(url: str, body: dict, *, key: str, headers: dict | None = None):
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        | (headers or {}),
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def traced_env(endpoint: str, **overrides: str) -> dict[str, str]:
    return project_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_BSP_SCHEDULE_DELAY="50",  # milliseconds: the test waits less for its spans
        **overrides,
    )


def server_and_statements(spans) -> bool:
    """The server span has come (it ends last), and the call's two statements."""
    statements = [span for span in spans if span.attributes.get("db.system") == "postgresql"]
    return any(span.kind == "SERVER" for span in spans) and len(statements) >= 2


@pytest.fixture
def key() -> str:
    _, key = create_api_client(name="traced-service")
    return key


@pytest.mark.parametrize("fast_path", ["true", "false"], ids=["fast path", "django"])
def test_an_action_call_continues_the_callers_trace_down_to_each_statement(key, fast_path):
    header, trace_id, caller_span = traceparent()
    with (
        otlp_receiver() as receiver,
        gunicorn(env=traced_env(receiver.endpoint, ACTIONS_FAST_PATH=fast_path)) as url,
    ):
        status, headers, _ = post(
            f"{url}/actions/example/bar", {"name": "ana"}, key=key, headers={"traceparent": header}
        )
        assert status == 200
        spans = receiver.wait_for(trace_id, server_and_statements)

    (server,) = [span for span in spans if span.kind == "SERVER"]
    assert server.parent_span_id == caller_span
    assert server.service == "dbapi"
    assert headers["traceresponse"].startswith(f"00-{trace_id}-{server.span_id}-")
    assert_nested(spans, server=server, client="traced-service")


def test_spans_go_over_otlp_http_with_the_http_protobuf_protocol(key):
    header, trace_id, caller_span = traceparent()
    with (
        otlp_http_receiver() as receiver,
        gunicorn(
            env=traced_env(receiver.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf")
        ) as url,
    ):
        status, _, _ = post(
            f"{url}/actions/example/bar", {"name": "ana"}, key=key, headers={"traceparent": header}
        )
        assert status == 200
        spans = receiver.wait_for(trace_id, server_and_statements)
    (server,) = [span for span in spans if span.kind == "SERVER"]
    assert server.parent_span_id == caller_span
    assert_nested(spans, server=server, client="traced-service")


@pytest.mark.parametrize("protocol", ["http/json", "HTTP", "grcp"])
def test_a_protocol_no_exporter_speaks_stops_the_start_up(protocol):
    result = run_python(
        "import django; django.setup()",
        clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318",
            OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        ),
    )
    assert result.returncode != 0
    assert "OTEL_EXPORTER_OTLP_PROTOCOL must be one of grpc, http/protobuf" in result.stderr


def assert_nested(spans, *, server, client: str) -> None:
    """server → action (module, action, client, outcome) → each SQL statement."""
    (action,) = [span for span in spans if span.name == "action"]
    assert action.parent_span_id == server.span_id
    assert action.attributes["dbapi.module"] == "example"
    assert action.attributes["dbapi.action"] == "bar"
    assert action.attributes["dbapi.client"] == client
    assert action.attributes["dbapi.outcome"] == "ok"
    statements = [span for span in spans if span.attributes.get("db.system") == "postgresql"]
    assert {span.name.split()[0] for span in statements} >= {"INSERT", "SELECT"}
    assert {span.parent_span_id for span in statements} == {action.span_id}


@contextlib.contextmanager
def traced_grpc_server(tmp_path: Path, endpoint: str) -> Iterator[str]:
    """A grpcserver sending its spans to `endpoint`, serving; yields its address."""
    address = f"127.0.0.1:{free_port()}"
    server = GrpcServerProcess(tmp_path, "--bind", address, **traced_env(endpoint))
    try:
        server.wait_until_serving(address)
        yield address
    finally:
        server.kill()


def test_a_grpc_call_continues_the_callers_trace_from_its_metadata(key, tmp_path):
    header, trace_id, caller_span = traceparent()
    with otlp_receiver() as receiver, traced_grpc_server(tmp_path, receiver.endpoint) as address:
        with grpc.insecure_channel(address) as channel:
            actions_pb2_grpc.ActionsStub(channel).Call(
                actions_pb2.CallRequest(
                    module="example", action="bar", params=to_struct({"name": "ana"})
                ),
                metadata=[("authorization", f"Bearer {key}"), ("traceparent", header)],
                timeout=10,
            )
        spans = receiver.wait_for(trace_id, server_and_statements)
    (server_span,) = [span for span in spans if span.kind == "SERVER"]
    assert server_span.parent_span_id == caller_span
    assert server_span.name == "dbapi.v1.Actions/Call"
    assert_nested(spans, server=server_span, client="traced-service")


def test_a_running_statement_shows_its_traceparent_in_pg_stat_activity(key):
    header, trace_id, _ = traceparent()
    comment = f"traceparent='00-{trace_id}-"
    with (
        otlp_receiver() as receiver,
        gunicorn(env=traced_env(receiver.endpoint)) as url,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        waiting = pool.submit(
            post,
            f"{url}/actions/example/wait",
            {"seconds": 0.9},
            key=key,
            headers={"traceparent": header},
        )

        def statement_running() -> bool:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT query FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s",
                    ["%pg_sleep%"],
                )
                return any(comment in query for (query,) in cursor.fetchall())

        wait_until(statement_running, timeout=5, interval=0.02)
        assert waiting.result()[0] == 200


def test_log_lines_inside_a_span_carry_its_trace_and_span_ids(key, tmp_path):
    header, trace_id, _ = traceparent()
    output = tmp_path / "gunicorn.log"
    with (
        otlp_receiver() as receiver,
        output.open("w") as stdout,
        gunicorn(env=traced_env(receiver.endpoint), stdout=stdout) as url,
    ):  # the server is stopped, its output complete, when the block ends
        status, _, _ = post(
            f"{url}/actions/example/nosuch",
            {},
            key=key,
            headers={"traceparent": header, "X-Request-ID": "traced-404"},
        )
        assert status == 404
        spans = receiver.wait_for(
            trace_id, lambda spans: any(span.kind == "SERVER" for span in spans)
        )
    (server,) = [span for span in spans if span.kind == "SERVER"]
    lines = [json.loads(line) for line in output.read_text().splitlines() if line.startswith("{")]
    (warning,) = [line for line in lines if line.get("logger") == "django.request"]
    assert warning["request_id"] == "traced-404"
    assert (warning["trace_id"], warning["span_id"]) == (trace_id, server.span_id)


# The span queue's bound for this test (OTEL_BSP_MAX_QUEUE_SIZE; the SDK's default is 2048):
# smaller, so that it fills in fewer calls.
QUEUE_SIZE = 512
# Calls before the worker's peak memory is first read: imports, connections and caches made,
# and, at four spans or more a call (server, action, SQL, Redis), the span queue full with
# room to spare.
WARM_UP_CALLS = 400
# Calls after it. Were the queue unbounded, their spans, never sent, would add several times
# MEMORY_GROWTH_ALLOWED_KIB (about 20 KiB a call); bounded, what remains is the allocator's
# own drift.
MEASURED_CALLS = 1500
MEMORY_GROWTH_ALLOWED_KIB = 10 * 1024


@pytest.mark.slow
def test_calls_succeed_in_flat_memory_while_the_collector_is_down(key):
    """Spans wait in a bounded queue and are dropped when it is full;
    no call waits on them, and the worker's peak memory stays where the warm-up left it.

    With the exporter's default timeout each batch is retried for seconds before it is given
    up, so spans come faster than failed exports drop them: the queue's bound is what holds.
    """
    dead = f"http://127.0.0.1:{free_port()}"
    env = {**traced_env(dead), "OTEL_BSP_MAX_QUEUE_SIZE": str(QUEUE_SIZE)}
    with gunicorn(env=env, workers=1) as url:

        def calls(count: int) -> set[int]:
            return {
                post(f"{url}/actions/example/bar", {"name": f"n{i}"}, key=key)[0]
                for i in range(count)
            }

        assert calls(WARM_UP_CALLS) == {200}
        worker = worker_pid(url)
        warm = peak_rss_kib(worker)
        assert calls(MEASURED_CALLS) == {200}
        growth = peak_rss_kib(worker) - warm
    assert growth < MEMORY_GROWTH_ALLOWED_KIB, f"peak RSS grew {growth} KiB"
    # Stopped with its queue full, it gave up on the spans rather than outlive its master.
    assert not Path(f"/proc/{worker}").exists()
