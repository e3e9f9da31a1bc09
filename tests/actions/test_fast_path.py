"""Action calls under gunicorn take the WSGI fast path (config/wsgi.py): the same answers as
Django's API handler, with the request id, the security headers and Django's logging."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

from apps.actions.wsgi import ActionsRoute
from apps.core.wsgi import ApiHandler, FastPaths
from tests.servers import call_wsgi

# The fast path and Django share the database connection, which the fast path closes when a
# request ends as Django does: these tests commit.
pytestmark = pytest.mark.django_db(transaction=True)

REQUESTS = {
    "foo": ("post", "/actions/example/foo", {"name": "ana"}, "key"),
    "bar": ("post", "/actions/example/bar", {"name": "ana", "email": "a@example.com"}, "key"),
    "ping": ("post", "/actions/example/", {}, "key"),
    "no key": ("post", "/actions/example/foo", {"name": "ana"}, None),
    "bad key": ("post", "/actions/example/foo", {"name": "ana"}, "0123456789ab.nope"),
    "unknown action": ("post", "/actions/example/nosuch", {}, "key"),
    "get": ("get", "/actions/example/foo", None, "key"),
    "invalid input": ("post", "/actions/example/bar", {"email": "not-an-email"}, "key"),
    "not json": ("post", "/actions/example/bar", "name=ana", "key"),
}


def fast_path(application):
    return FastPaths(application, [ActionsRoute()])


def environ(method: str, path: str, body, key: str | None, *, request_id: str) -> dict:
    headers = {"X-Request-ID": request_id}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    factory = RequestFactory()
    if method == "get":
        return factory.get(path, headers=headers).environ
    content_type = "text/plain" if isinstance(body, str) else "application/json"
    data = body if isinstance(body, str) else json.dumps(body)
    return factory.post(path, data, content_type=content_type, headers=headers).environ


def comparable(answer, request_id: str) -> tuple:
    status, headers, body = answer
    headers.pop("Content-Length", None)  # the fast path states it; gunicorn does for Django's
    if headers.get("Content-Type", "").endswith("json"):
        parsed = json.loads(body)
        if isinstance(parsed, dict):
            parsed.pop("time", None)  # foo's clock
        body = parsed
    assert headers.pop("X-Request-ID") == request_id
    return status, headers, body


@pytest.mark.parametrize("name", REQUESTS)
def test_the_fast_path_answers_as_django_does(name, transactional_db, api_key_value):
    method, path, body, key = REQUESTS[name]
    key = api_key_value if key == "key" else key
    django = call_wsgi(ApiHandler(), environ(method, path, body, key, request_id="r-django"))
    fast = call_wsgi(fast_path(ApiHandler()), environ(method, path, body, key, request_id="r-fast"))
    django, fast = comparable(django, "r-django"), comparable(fast, "r-fast")
    if isinstance(django[2], dict) and "request_id" in django[2]:
        assert (django[2].pop("request_id"), fast[2].pop("request_id")) == ("r-django", "r-fast")
    assert fast == django


def test_security_headers_are_the_api_handlers(api_key_value, settings):
    request = environ(
        "post", "/actions/example/foo", {"name": "ana"}, api_key_value, request_id="h"
    )
    _, headers, _ = call_wsgi(fast_path(ApiHandler()), request)
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == settings.SECURE_REFERRER_POLICY
    assert "Set-Cookie" not in headers


def test_client_errors_are_logged_as_django_logs_them(log_lines):
    request = environ("post", "/actions/example/foo", {}, None, request_id="logged-401")
    status, _, _ = call_wsgi(fast_path(ApiHandler()), request)
    assert status.startswith("401")
    [line] = log_lines(logger="django.request")
    assert line["message"] == "Unauthorized: /actions/example/foo"
    assert line["request_id"] == "logged-401"
    assert line["status_code"] == 401


@pytest.mark.parametrize("application", [ApiHandler, lambda: fast_path(ApiHandler())])
def test_a_host_outside_allowed_hosts_is_refused(api_key_value, application):
    request = environ(
        "post", "/actions/example/foo", {"name": "ana"}, api_key_value, request_id="x"
    )
    request["HTTP_HOST"] = "evil.example.com"
    status, _, _ = call_wsgi(application(), request)
    assert status.startswith("400")


def test_other_paths_go_on(api_key_value):
    request = RequestFactory().get("/health/live").environ
    status, _, body = call_wsgi(fast_path(ApiHandler()), request)
    assert (status, json.loads(body)) == ("200 OK", {"status": "ok"})


def test_a_middleware_the_fast_path_does_not_reproduce_stops_the_start_up(settings):
    settings.API_MIDDLEWARE = [*settings.API_MIDDLEWARE, "tests.actions.test_fast_path.Unknown"]
    with pytest.raises(ImproperlyConfigured, match=r"tests\.actions\.test_fast_path\.Unknown"):
        fast_path(ApiHandler())


class Unknown:
    """A middleware the fast path knows nothing of."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)


def test_a_whole_answer_ends_its_request_even_when_its_body_is_never_closed(api_key_value):
    from apps.core.request_id import get_request_id

    request = environ(
        "post", "/actions/example/foo", {"name": "ana"}, api_key_value, request_id="unclosed"
    )
    body = fast_path(ApiHandler())(request, lambda status, headers, exc_info=None: None)
    assert b"".join(body)  # read, and never closed, as some test clients do
    assert get_request_id() is None
