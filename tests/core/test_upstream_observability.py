"""Upstream calls seen from outside: a call that fails after its retries is one
`dbapi_dependency_errors_total{dependency="upstream"}`, over HTTP (httpx) and gRPC; and with
tracing on, the caller's trace goes on into them (`traceparent` on the HTTP request, gRPC
metadata), so the upstream's own spans join it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from apps.actions.clients import create_api_client
from apps.core.upstreams import UpstreamError, close_upstreams, upstream_channel
from apps.rpc.client import ActionsClient
from tests.core.test_tracing import post, traced_env, traced_grpc_server, traceparent
from tests.http_upstream import http_upstream, upstream_config
from tests.metrics import TOKEN, scrape, value
from tests.otlp import otlp_receiver
from tests.servers import PROJECT_DIR, free_port, gunicorn

pytestmark = pytest.mark.django_db

UPSTREAM = {"dependency": "upstream"}


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = TOKEN


@pytest.fixture
def call_hello(client, db):
    _, key = create_api_client(name="hello-caller")

    def call(name: str = "ana"):
        return client.post(
            "/actions/example/hello",
            {"name": name},
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}"},
        )

    return call


def upstream_errors(client) -> float:
    return value(scrape(client), "dbapi_dependency_errors_total", **UPSTREAM)


# --- dbapi_dependency_errors_total{dependency="upstream"} ----------------------------------


def test_an_http_upstream_that_fails_after_its_retries_counts_once(
    client, metrics_on, flask, settings, call_hello
):
    settings.UPSTREAMS = {"flask": upstream_config(f"{flask.url}/flaky/9")}
    before = upstream_errors(client)
    assert call_hello().status_code == 502
    assert len(flask.requests) == 3  # the first try and two retries: one failure counted
    assert upstream_errors(client) == before + 1


def test_an_unreachable_http_upstream_counts(client, metrics_on, settings, call_hello):
    settings.UPSTREAM_BACKOFF = 0.01
    settings.UPSTREAMS = {"flask": upstream_config(f"http://127.0.0.1:{free_port()}")}
    before = upstream_errors(client)
    try:
        assert call_hello().status_code == 502
    finally:
        close_upstreams()
    assert upstream_errors(client) == before + 1


def test_an_upstream_that_answers_counts_nothing(client, metrics_on, flask, settings, call_hello):
    """A success after a retry, and the upstream's own 404 (an answer for the caller)."""
    before = upstream_errors(client)
    settings.UPSTREAMS = {"flask": upstream_config(f"{flask.url}/flaky/1")}
    assert call_hello().status_code == 200
    settings.UPSTREAMS = {"flask": upstream_config(f"{flask.url}/status/404")}
    close_upstreams()
    assert call_hello().status_code == 502  # the action's own verdict on a 404
    assert upstream_errors(client) == before


def test_an_unreachable_grpc_upstream_counts(client, metrics_on, settings):
    settings.UPSTREAMS = {"dead": upstream_config(f"grpc://127.0.0.1:{free_port()}", RETRIES=0)}
    before = upstream_errors(client)
    try:
        with pytest.raises(UpstreamError):
            ActionsClient(upstream_channel("dead")).call("example", "foo", name="ana")
    finally:
        close_upstreams()
    assert upstream_errors(client) == before + 1


def test_nothing_is_counted_when_metrics_are_off(client, metrics_on, settings, call_hello):
    settings.UPSTREAM_BACKOFF = 0.01
    settings.UPSTREAMS = {"flask": upstream_config(f"http://127.0.0.1:{free_port()}")}
    before = upstream_errors(client)
    settings.METRICS_ENABLED = False
    try:
        assert call_hello().status_code == 502
    finally:
        close_upstreams()
    settings.METRICS_ENABLED = True
    assert upstream_errors(client) == before


# --- The trace goes on into upstream calls --------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_actions_http_upstream_call_carries_the_trace_on():
    """POST /actions/example/hello under gunicorn, traced: the upstream receives a
    `traceparent` of the caller's trace whose parent is the httpx span, under the action."""
    _, key = create_api_client(name="traced-hello")
    header, trace_id, _ = traceparent()
    with (
        http_upstream() as flask,
        otlp_receiver() as receiver,
        gunicorn(env=traced_env(receiver.endpoint, UPSTREAM_FLASK_URL=flask.url)) as url,
    ):
        status, _, body = post(
            f"{url}/actions/example/hello",
            {"name": "ana"},
            key=key,
            headers={"traceparent": header},
        )
        assert status == 200, body
        spans = receiver.wait_for(
            trace_id, lambda spans: any(span.kind == "SERVER" for span in spans)
        )
    [seen] = flask.requests
    headers = {name.lower(): value for name, value in seen.headers.items()}
    version, sent_trace, sent_parent, _ = headers["traceparent"].split("-")
    assert (version, sent_trace) == ("00", trace_id)
    [client_span] = [span for span in spans if span.span_id == sent_parent]
    assert client_span.kind == "CLIENT"  # httpx's span for the request
    [action] = [span for span in spans if span.name == "action"]
    assert client_span.parent_span_id == action.span_id


# A process of the project calling the upstream "dbapi" over gRPC inside a span that continues
# the trace given as its argument, as an action serving a call would.
GRPC_CALLER = textwrap.dedent(
    """
    import sys

    import django

    django.setup()
    from apps.core import tracing
    from apps.core.upstreams import upstream_channel
    from apps.rpc.client import ActionsClient

    incoming = tracing.grpc_call("/relay.Relay/Call", {"traceparent": sys.argv[1]})
    with tracing.server_span(incoming):
        ActionsClient(upstream_channel("dbapi")).call("example", "foo", name="ana")
    """
)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_outgoing_grpc_call_carries_the_trace_in_its_metadata(tmp_path):
    """The upstream (a traced grpcserver) continues the caller's trace: its server span is a
    child of the caller's gRPC client span, which it can only know from the metadata."""
    _, key = create_api_client(name="traced-relay")
    header, trace_id, _ = traceparent()
    with otlp_receiver() as receiver, traced_grpc_server(tmp_path, receiver.endpoint) as address:
        caller = subprocess.run(
            [sys.executable, "-c", GRPC_CALLER, header],
            cwd=PROJECT_DIR,
            env=traced_env(
                receiver.endpoint,
                UPSTREAM_DBAPI_URL=f"grpc://{address}",
                UPSTREAM_DBAPI_TOKEN=key,
            ),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert caller.returncode == 0, caller.stderr
        spans = receiver.wait_for(
            trace_id,
            lambda spans: any(span.name == "dbapi.v1.Actions/Call" for span in spans),
        )
    [upstream_server] = [
        span for span in spans if span.name == "dbapi.v1.Actions/Call" and span.kind == "SERVER"
    ]
    [client_span] = [span for span in spans if span.span_id == upstream_server.parent_span_id]
    assert client_span.kind == "CLIENT"  # the gRPC client instrumentation's span
    [relay] = [span for span in spans if span.name == "relay.Relay/Call"]
    assert client_span.parent_span_id == relay.span_id
