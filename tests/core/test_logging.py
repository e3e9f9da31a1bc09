"""Log lines are one JSON object each, on stdout, carrying the request id."""

import json
import logging

import pytest

pytestmark = pytest.mark.urls("tests.core.urls")


def test_log_lines_written_during_a_request_carry_its_id(client, log_lines):
    client.get("/t/log", headers={"X-Request-ID": "log-test-1"})
    [record] = log_lines(logger="tests.views")
    assert record["message"] == "Hello from a view"
    assert record["request_id"] == "log-test-1"
    assert record["level"] == "INFO"
    assert record["answer"] == 42
    assert record["timestamp"].endswith("+00:00")


def test_a_crash_is_logged_once_with_traceback_and_request_id(client, log_lines):
    client.get("/t/broken", headers={"X-Request-ID": "log-test-2"})
    [crash] = log_lines(level="ERROR")
    assert crash["message"] == "Unhandled exception"
    assert crash["request_id"] == "log-test-2"
    assert "RuntimeError: secret internal detail" in crash["exc_info"]


def test_djangos_own_request_warnings_carry_the_id(client, log_lines):
    client.get("/no/such/page", headers={"X-Request-ID": "log-test-3"})
    [not_found] = log_lines(logger="django.request")
    assert not_found["request_id"] == "log-test-3"
    assert not_found["status_code"] == 404
    assert not_found["message"] == "Not Found: /no/such/page"


def test_log_lines_outside_a_request_have_no_id(log_lines):
    logging.getLogger("tests.outside").warning("No request here")
    [record] = log_lines(logger="tests.outside")
    assert record["request_id"] is None


def test_a_secret_in_a_path_is_masked_in_the_log(client, log_lines):
    response = client.get("/api/v1/otp/check/493817", headers={"X-Request-ID": "log-test-5"})
    assert response.status_code == 401
    [warning] = log_lines(logger="django.request")
    assert warning["message"] == "Unauthorized: /api/v1/otp/check/[masked]"
    assert "493817" not in json.dumps(log_lines())


@pytest.mark.parametrize(
    "secret", ["%20705866", "%09705866", "123%20456", "70%0A5866", "12%2F3456"]
)
def test_everything_after_a_masked_prefix_is_masked_however_encoded(client, log_lines, secret):
    client.get(f"/api/v1/otp/check/{secret}", headers={"X-Request-ID": "log-test-6"})
    [warning] = log_lines(logger="django.request")
    assert warning["message"].endswith(": /api/v1/otp/check/[masked]")
    written = json.dumps(
        [{k: v for k, v in r.items() if k not in ("timestamp", "request_id")} for r in log_lines()]
    )
    for piece in ("705866", "123", "456", "5866", "3456"):
        assert piece not in written
