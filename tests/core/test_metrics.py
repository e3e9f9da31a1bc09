"""GET /metrics: Prometheus' text for `Bearer <METRICS_TOKEN>` only, a 404 otherwise; requests
counted by view name, never by raw path; dependency failures counted where they are decided."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from apps.core.problems import problem_for_exception
from tests.metrics import TOKEN, samples, scrape, value

pytestmark = pytest.mark.django_db


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = TOKEN


def test_metrics_are_a_404_when_no_token_is_set(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics", headers={"Authorization": "Bearer "})
    assert response.status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [None, f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer", f"Bearer {TOKEN[:-1]}"],
)
def test_metrics_are_a_404_without_the_token(client, metrics_on, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 404
    assert b"dbapi_" not in response.content


def test_metrics_answer_prometheus_text_with_the_token(client, metrics_on):
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert "no-cache" in response["Cache-Control"]
    found = samples(response.content)
    assert {name for name, _ in found} >= {"dbapi_hits_total", "dbapi_hits_pending"}


def test_with_a_metrics_port_metrics_answer_only_there(client, metrics_on, settings):
    """SERVER_PORT is the listener's port, which gunicorn sets from the socket."""
    settings.METRICS_PORT = 9100
    headers = {"Authorization": f"Bearer {TOKEN}"}
    on_the_app_port = client.get("/metrics", headers=headers, SERVER_PORT="8000")
    assert on_the_app_port.status_code == 404
    assert b"dbapi_" not in on_the_app_port.content
    assert client.get("/metrics", headers=headers, SERVER_PORT="9100").status_code == 200
    assert client.get("/metrics", SERVER_PORT="9100").status_code == 404  # the token still counts


def test_metrics_are_not_redirected_to_https(client, metrics_on, settings):
    """Prometheus scrapes the pod's plain HTTP port, as the probes do."""
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert client.get("/account/login/").status_code == 301


def test_requests_are_counted_by_view_name_method_and_status(client, metrics_on):
    before = scrape(client)
    client.get("/health/live")
    client.get("/health/live")
    client.post("/health/live")
    after = scrape(client)

    def delta(**labels):
        return value(after, "dbapi_http_requests_total", **labels) - value(
            before, "dbapi_http_requests_total", **labels
        )

    assert delta(view="core:live", method="GET", status="200") == 2
    assert delta(view="core:live", method="POST", status="405") == 1
    count = "dbapi_http_request_duration_seconds_count"
    timed = value(after, count, view="core:live", method="GET") - value(
        before, count, view="core:live", method="GET"
    )
    assert timed == 2


def test_paths_no_view_matches_share_one_label_value(client, metrics_on):
    before = scrape(client)
    for path in ("/nothing-here", "/nor-here/123", "/secret-user-name"):
        assert client.get(path).status_code == 404
    text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).content.decode()
    after = samples(text)
    labels = {"view": "unmatched", "method": "GET", "status": "404"}
    assert (
        value(after, "dbapi_http_requests_total", **labels)
        - value(before, "dbapi_http_requests_total", **labels)
        == 3
    )
    assert "nothing-here" not in text
    assert "secret-user-name" not in text


def test_unknown_methods_share_one_label_value(client, metrics_on):
    labels = {"view": "core:live", "method": "other", "status": "405"}
    before = value(scrape(client), "dbapi_http_requests_total", **labels)
    client.generic("BREW", "/health/live")
    after = scrape(client)
    assert value(after, "dbapi_http_requests_total", **labels) - before == 1
    assert not [key for key in after if ("method", "BREW") in key[1]]


def test_nothing_is_counted_when_metrics_are_off(client, settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ENABLED = False
    before = scrape(client)
    client.get("/health/live")
    client.get("/")
    after = scrape(client)
    labels = {"view": "core:live", "method": "GET", "status": "200"}
    assert value(after, "dbapi_http_requests_total", **labels) == value(
        before, "dbapi_http_requests_total", **labels
    )
    assert value(after, "dbapi_hits_total") == value(before, "dbapi_hits_total")


def test_a_database_that_fails_a_request_is_a_dependency_error(client, metrics_on):
    before = value(scrape(client), "dbapi_dependency_errors_total", dependency="database")
    assert problem_for_exception(OperationalError("server closed the connection")).status == 503
    after = value(scrape(client), "dbapi_dependency_errors_total", dependency="database")
    assert after - before == 1


def test_a_cache_that_fails_is_a_dependency_error(client, metrics_on, redis_down):
    before = value(scrape(client), "dbapi_dependency_errors_total", dependency="cache")
    assert client.get("/").status_code == 200  # counted in the database instead
    after = value(scrape(client), "dbapi_dependency_errors_total", dependency="cache")
    assert after - before >= 1
