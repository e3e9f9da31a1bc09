"""Upstream services by name, against a real local HTTP server: pooled connections, the request
id passed on, retries, timeouts, and failures answered as 502/504 problems by a real action."""

from __future__ import annotations

import json
import threading
import urllib.request

import pytest

from apps.actions.clients import create_api_client
from apps.core.request_id import request_id_scope
from apps.core.upstreams import UpstreamError, UpstreamTimeout, upstream
from tests.http_upstream import http_upstream, upstream_config
from tests.problems import PROBLEM
from tests.servers import free_port, gunicorn, project_env
from tests.test_settings import clean_env, run_python


@pytest.fixture
def request_id():
    """Pretend to be serving a request with a known id."""
    with request_id_scope("upstream-test-1") as request_id:
        yield request_id


# --- The client -----------------------------------------------------------------------------


def test_one_client_per_name_keeps_its_connection_alive(flask):
    assert upstream("flask") is upstream("flask")
    answers = [upstream("flask").get("/hello/ana") for _ in range(5)]
    assert [a.text for a in answers] == ["Hello ana!"] * 5
    assert flask.connections == 1


def test_threads_share_the_pool_instead_of_opening_a_connection_per_call(flask):
    def calls():
        for _ in range(10):
            assert upstream("flask").get("/hello/ana").status_code == 200

    threads = [threading.Thread(target=calls) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(flask.requests) == 40
    assert flask.connections <= 4


def test_the_current_request_id_is_passed_on(flask, request_id):
    upstream("flask").get("/hello/ana", headers={"Accept": "text/plain"})
    [seen] = flask.requests
    assert seen.headers["X-Request-ID"] == request_id
    assert seen.headers["Accept"] == "text/plain"


def test_outside_a_request_no_request_id_is_sent(flask):
    upstream("flask").get("/hello/ana")
    assert "X-Request-ID" not in flask.requests[0].headers


def test_the_token_is_sent_as_a_bearer(flask, settings):
    settings.UPSTREAMS = {"flask": upstream_config(flask.url, TOKEN="s3cret")}
    upstream("flask").get("/hello/ana")
    assert flask.requests[0].headers["Authorization"] == "Bearer s3cret"


def test_an_idempotent_call_is_retried_until_it_succeeds(flask):
    response = upstream("flask").get("/flaky/2/hello/ana")
    assert response.text == "Hello ana!"
    assert flask.paths() == ["/flaky/2/hello/ana"] * 3


def test_retries_give_up_with_a_502(flask):
    with pytest.raises(UpstreamError) as raised:
        upstream("flask").get("/flaky/5/hello/ana")
    assert raised.value.status_code == 502
    assert str(raised.value.detail) == "The upstream service 'flask' answered 503."
    assert len(flask.requests) == 3  # the first try and RETRIES=2 more


def test_a_post_is_not_repeated_after_the_upstream_answered(flask):
    with pytest.raises(UpstreamError):
        upstream("flask").post("/flaky/1/hello/ana", json={"a": 1})
    assert len(flask.requests) == 1


def test_a_500_is_not_retried(flask):
    with pytest.raises(UpstreamError) as raised:
        upstream("flask").get("/status/500")
    assert raised.value.status_code == 502
    assert len(flask.requests) == 1


def test_client_errors_are_answers_for_the_caller(flask):
    assert upstream("flask").get("/status/404").status_code == 404


def test_a_refused_connection_is_a_502(settings):
    settings.UPSTREAM_BACKOFF = 0.01
    settings.UPSTREAMS = {"flask": upstream_config(f"http://127.0.0.1:{free_port()}")}
    with pytest.raises(UpstreamError) as raised:
        upstream("flask").post("/hello/ana")  # nothing was sent: retried even for a POST
    assert type(raised.value) is UpstreamError
    assert raised.value.status_code == 502
    assert str(raised.value.detail) == "The upstream service 'flask' could not be reached."


def test_a_slow_upstream_is_a_504_after_the_timeout(flask, settings):
    settings.UPSTREAMS = {"flask": upstream_config(flask.url, TIMEOUT=0.2)}
    with pytest.raises(UpstreamTimeout) as raised:
        upstream("flask").get("/slow/2")  # it would answer, after 2 s: the 0.2 s timeout cut it
    assert raised.value.status_code == 504
    assert len(flask.requests) == 1  # a timeout is not retried: it would only wait again


def test_a_call_may_have_its_own_timeout(flask):
    with pytest.raises(UpstreamTimeout):
        upstream("flask").get("/slow/1", timeout=0.1)


def test_an_upstream_that_is_not_configured_is_a_502(settings):
    settings.UPSTREAMS = {}
    with pytest.raises(UpstreamError) as raised:
        upstream("flask")
    assert str(raised.value.detail) == "The upstream service 'flask' is not configured."


def test_a_grpc_upstream_is_not_an_http_one(settings):
    settings.UPSTREAMS = {"dbapi": upstream_config("grpc://127.0.0.1:50051")}
    with pytest.raises(UpstreamError):
        upstream("dbapi")


# --- Settings -----------------------------------------------------------------------------------


SHOW_UPSTREAMS = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps(settings.UPSTREAMS))
"""


def test_upstreams_are_declared_by_environment_variables():
    result = run_python(
        SHOW_UPSTREAMS,
        clean_env(
            UPSTREAM_FLASK_URL="http://flask:5000",
            UPSTREAM_FLASK_TIMEOUT="2.5",
            UPSTREAM_FLASK_TOKEN="t0ken",
            UPSTREAM_MY_DBAPI_URL="grpc://dbapi-grpc:50051",
            UPSTREAM_RETRIES="3",
            UPSTREAM_EMPTY_URL="",
        ),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "flask": {"URL": "http://flask:5000", "TIMEOUT": 2.5, "RETRIES": 3, "TOKEN": "t0ken"},
        "my_dbapi": {"URL": "grpc://dbapi-grpc:50051", "TIMEOUT": 5.0, "RETRIES": 3, "TOKEN": ""},
    }


def test_an_upstream_url_of_another_kind_stops_the_start_up():
    result = run_python(SHOW_UPSTREAMS, clean_env(UPSTREAM_FLASK_URL="ftp://flask"))
    assert result.returncode != 0
    assert "UPSTREAM_FLASK_URL must be an http(s):// or grpc(s):// URL" in result.stderr


# --- Through a real action over HTTP ----------------------------------------------------------


@pytest.fixture
def call_hello(client, db):
    _, key = create_api_client(name="hello-caller")

    def call(name: str = "ana", **headers):
        return client.post(
            "/actions/example/hello",
            {"name": name},
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}", **headers},
        )

    return call


def test_hello_answers_the_upstream_greeting_and_passes_the_request_id_on(flask, call_hello):
    response = call_hello("ana maria", **{"X-Request-ID": "hello-1"})
    assert response.status_code == 200, response.content
    assert response.json() == {"name": "ana maria", "answer": "Hello ana maria!"}
    [seen] = flask.requests
    assert seen.path == "/hello/ana%20maria"
    assert seen.headers["X-Request-ID"] == "hello-1"


def test_hello_with_a_flaky_upstream_succeeds_after_a_retry(flask, settings, call_hello):
    settings.UPSTREAMS = {"flask": upstream_config(f"{flask.url}/flaky/1")}
    response = call_hello("ana")
    assert response.status_code == 200
    assert response.json()["answer"] == "Hello ana!"
    assert len(flask.requests) == 2


def test_hello_with_the_upstream_down_is_a_502_problem(settings, call_hello, caplog):
    settings.UPSTREAM_BACKOFF = 0.01
    settings.UPSTREAMS = {"flask": upstream_config(f"http://127.0.0.1:{free_port()}")}
    response = call_hello("ana")
    assert response.status_code == 502
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["detail"] == "The upstream service 'flask' could not be reached."
    assert body["request_id"] == response["X-Request-ID"]
    assert not [r for r in caplog.records if r.exc_info]  # a failure, not a bug: no traceback


def test_hello_with_a_slow_upstream_is_a_504_problem(flask, settings, call_hello):
    settings.UPSTREAMS = {"flask": upstream_config(f"{flask.url}/slow/1", TIMEOUT=0.2)}
    response = call_hello("ana")
    assert response.status_code == 504
    assert response["Content-Type"] == PROBLEM
    assert response.json()["detail"] == "The upstream service 'flask' did not answer in time."


def test_hello_with_an_upstream_answering_broken_json_is_a_502_problem(flask, settings, call_hello):
    settings.UPSTREAMS = {"flask": upstream_config(f"{flask.url}/badjson")}
    response = call_hello("ana")
    assert response.status_code == 502
    assert response.json()["detail"] == "The upstream service 'flask' answered invalid JSON."


def test_hello_with_the_upstream_not_configured_is_a_502_problem(settings, call_hello):
    settings.UPSTREAMS = {}
    response = call_hello("ana")
    assert response.status_code == 502
    assert response.json()["detail"] == "The upstream service 'flask' is not configured."


@pytest.mark.django_db(transaction=True)
def test_hello_under_gunicorn_reaches_the_upstream_named_in_the_environment():
    _, key = create_api_client(name="gunicorn-hello")
    with http_upstream() as flask:
        env = project_env(UPSTREAM_FLASK_URL=flask.url)
        with gunicorn(env=env, workers=1) as base_url:
            for name in ("ana", "bea"):
                request = urllib.request.Request(
                    f"{base_url}/actions/example/hello",
                    data=json.dumps({"name": name}).encode(),
                    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                    method="POST",
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    assert json.load(response)["answer"] == f"Hello {name}!"
    assert flask.connections == 1  # the worker's client kept its connection for the second call
