"""Traces: with OTEL_EXPORTER_OTLP_ENDPOINT set, a call continues the caller's `traceparent`
through the server span, the action and each SQL statement, and a real OTLP receiver gets them;
with the collector down nothing fails."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request

import pytest

from apps.actions.clients import create_api_client
from tests.otlp import otlp_receiver
from tests.servers import free_port, gunicorn, project_env

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
    statements = [span for span in spans if span.attributes.get("db.system") == "postgresql"]
    assert {span.name.split()[0] for span in statements} >= {"INSERT", "SELECT"}
    by_id = {span.span_id: span for span in spans}
    for statement in statements:  # each under the server span, through the spans between
        ancestor = statement
        while ancestor.parent_span_id in by_id and ancestor is not server:
            ancestor = by_id[ancestor.parent_span_id]
        assert ancestor is server


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


def test_calls_succeed_while_the_collector_is_down(key):
    """Spans wait in a bounded queue and are dropped when it is full; no call waits on them."""
    dead = f"http://127.0.0.1:{free_port()}"
    with gunicorn(
        env=traced_env(
            dead,
            OTEL_BSP_MAX_QUEUE_SIZE="64",
            OTEL_BSP_MAX_EXPORT_BATCH_SIZE="32",
            OTEL_EXPORTER_OTLP_TIMEOUT="1",
        )
    ) as url:
        statuses = {
            post(f"{url}/actions/example/bar", {"name": f"n{i}"}, key=key)[0] for i in range(100)
        }
    assert statuses == {200}
