"""Every action call is counted once by the pipeline, over HTTP and gRPC, by module, action,
transport and outcome (`ok` or the problem's status), and timed; names that do not exist are
`unknown`; a batch is one call of `batch/batch`; a stream is counted when it ends."""

from __future__ import annotations

import pytest

from apps.actions.clients import create_api_client
from tests.actions.conftest import ActionCaller
from tests.metrics import TOKEN, scrape, value

pytestmark = pytest.mark.django_db

CALLS = "dbapi_action_calls_total"
TIMED = "dbapi_action_duration_seconds_count"


@pytest.fixture(autouse=True)
def metrics_on(settings):
    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = TOKEN


class Counts:
    """What the calls in a test added to the counters."""

    def __init__(self, client):
        self.client = client
        self.before = scrape(client)

    def __call__(self, name: str = CALLS, **labels: str) -> float:
        return value(scrape(self.client), name, **labels) - value(self.before, name, **labels)


@pytest.fixture
def counts(client) -> Counts:
    return Counts(client)


def labels(module="example", action="bar", transport="http", **extra) -> dict:
    return {"module": module, "action": action, "transport": transport, **extra}


def test_a_call_is_counted_once_and_timed(call, counts):
    assert call("example/bar", {"name": "ana"}).status_code == 200
    assert counts(**labels(outcome="ok")) == 1
    assert counts(TIMED, **labels()) == 1


@pytest.mark.parametrize(
    ("path", "body", "key", "outcome"),
    [
        ("example/bar", {"email": "not-an-email"}, "default", "400"),
        ("example/bar", {"name": "ana"}, None, "401"),
        ("example/bar", {"name": "ana"}, "0123456789ab.nope", "401"),
    ],
    ids=["invalid input", "no key", "bad key"],
)
def test_a_refused_call_is_counted_with_its_status(call, counts, path, body, key, outcome):
    response = call(path, body, key=key)
    assert str(response.status_code) == outcome
    assert counts(**labels(outcome=outcome)) == 1
    assert counts(**labels(outcome="ok")) == 0


def test_made_up_names_are_counted_as_unknown(call, counts, client):
    assert call("example/made-up-action", {}).status_code == 404
    assert call("made-up-module/bar", {}).status_code == 404
    assert counts(**labels(action="unknown", outcome="404")) == 1
    assert counts(**labels(module="unknown", action="unknown", outcome="404")) == 1
    text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).content
    assert b"made-up" not in text


def test_a_call_over_the_rate_is_counted_as_rate_limited(client, counts):
    _, key = create_api_client(name="limited", rate="1/min")
    limited = ActionCaller(client, key)
    assert limited("example/foo", {"name": "ana"}).status_code == 200
    assert limited("example/foo", {"name": "ana"}).status_code == 429
    assert counts(**labels(action="foo", outcome="429")) == 1
    assert counts("dbapi_rate_limited_total", module="example") == 1


def test_a_batch_is_one_call_of_the_batch_pseudo_action(call, counts):
    calls = [{"module": "example", "action": "foo", "input": {"name": "a"}}] * 3
    assert call("batch", {"calls": calls}).status_code == 200
    assert counts(**labels(module="batch", action="batch", outcome="ok")) == 1
    assert counts(**labels(action="foo", outcome="ok")) == 0


def test_a_failed_batch_is_counted_with_its_status(call, counts):
    calls = [
        {"module": "example", "action": "foo", "input": {"name": "a"}},
        {"module": "example", "action": "bar", "input": {"email": "bad"}},
    ]
    assert call("batch", {"calls": calls}).status_code == 400
    assert counts(**labels(module="batch", action="batch", outcome="400")) == 1


def test_a_stream_is_counted_when_its_last_row_is_read(call, counts):
    response = call("example/numbers", {"count": 5}, headers={"Accept": "application/x-ndjson"})
    assert counts(**labels(action="numbers", outcome="ok")) == 0  # not read yet
    assert len(b"".join(response.streaming_content).splitlines()) == 5
    response.close()
    assert counts(**labels(action="numbers", outcome="ok")) == 1


def test_calls_are_not_counted_when_metrics_are_off(call, counts, settings):
    settings.METRICS_ENABLED = False
    assert call("example/bar", {"name": "ana"}).status_code == 200
    settings.METRICS_ENABLED = True
    assert counts(**labels(outcome="ok")) == 0
