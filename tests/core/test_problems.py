"""Every API error is an RFC 9457 problem: application/problem+json with type/title/status."""

import pytest

from tests.problems import assert_problem

pytestmark = pytest.mark.urls("tests.core.urls")


def test_validation_error_is_400_with_errors_per_field(client):
    response = client.post(
        "/t/validate", {"name": "too long", "count": -1}, content_type="application/json"
    )
    body = assert_problem(response, 400)
    assert set(body["errors"]) == {"name", "count"}
    assert body["errors"]["count"] == ["Ensure this value is greater than or equal to 0."]


def test_non_field_validation_error_is_keyed_non_field_errors(client):
    response = client.post(
        "/t/validate", {"name": "nope", "count": 1}, content_type="application/json"
    )
    body = assert_problem(response, 400)
    assert body["errors"] == {"non_field_errors": ["That combination is not allowed."]}


def test_malformed_json_is_400(client):
    response = client.post("/t/validate", "{not json", content_type="application/json")
    body = assert_problem(response, 400)
    assert "JSON parse error" in body["detail"]


def test_json_nested_too_deeply_is_400_not_a_crash(client):
    response = client.post("/t/validate", "[" * 100_000, content_type="application/json")
    body = assert_problem(response, 400)
    assert "nested too deeply" in body["detail"]


def test_a_body_over_data_upload_max_memory_size_is_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 50
    response = client.post(
        "/t/validate", {"name": "x" * 60, "count": 1}, content_type="application/json"
    )
    assert assert_problem(response, 413)["detail"] == "The body may be at most 50 bytes."


def test_missing_credentials_is_401_with_www_authenticate(client):
    response = client.get("/t/login")
    body = assert_problem(response, 401)
    assert response["WWW-Authenticate"] == "Bearer"
    assert body["title"] == "Unauthorized"


def test_permission_denied_is_403(client):
    body = assert_problem(client.get("/t/forbidden"), 403)
    assert body["detail"] == "Not for you."


def test_not_found_from_a_drf_view_is_404(client):
    body = assert_problem(client.get("/t/missing"), 404)
    assert body["detail"] == "No such item."


def test_unknown_url_is_404_problem(client):
    body = assert_problem(client.get("/no/such/page"), 404)
    assert body["title"] == "Not Found"


def test_unknown_url_asked_for_by_a_browser_is_an_html_page(client):
    response = client.get("/no/such/page", headers={"Accept": "text/html,*/*;q=0.8"})
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert b"Not found" in response.content


def test_wrong_method_is_405_with_allow(client):
    response = client.get("/t/validate")
    assert_problem(response, 405)
    assert "POST" in response["Allow"]


def test_unsupported_media_type_is_415(client):
    response = client.post(
        "/t/validate", "name=x", content_type="application/x-www-form-urlencoded"
    )
    assert_problem(response, 415)


def test_crash_in_a_drf_view_is_500_without_traceback(client):
    response = client.get("/t/broken", headers={"X-Request-ID": "crash-1"})
    body = assert_problem(response, 500)
    assert body["request_id"] == "crash-1"
    assert b"secret internal detail" not in response.content
    assert b"Traceback" not in response.content


def test_crash_in_a_plain_view_is_500_problem(client):
    client.raise_request_exception = False
    response = client.get("/t/plain-broken", headers={"X-Request-ID": "crash-2"})
    body = assert_problem(response, 500)
    assert body["request_id"] == "crash-2"
    assert b"secret internal detail" not in response.content
