"""Every response carries X-Request-ID: the client's when sane, else a new one."""

import re

import pytest

GENERATED = re.compile(r"[0-9a-f]{32}")


def test_a_sane_client_request_id_is_kept(client):
    response = client.get("/health/live", headers={"X-Request-ID": "mobile-7f3a.42:1"})
    assert response["X-Request-ID"] == "mobile-7f3a.42:1"


def test_without_a_request_id_one_is_generated(client):
    response = client.get("/health/live")
    assert GENERATED.fullmatch(response["X-Request-ID"])


def test_each_request_gets_its_own_generated_id(client):
    first = client.get("/health/live")["X-Request-ID"]
    second = client.get("/health/live")["X-Request-ID"]
    assert first != second


@pytest.mark.parametrize(
    "bad",
    ["has space", "x" * 129, "semi;colon", 'quote"d', "new\\nline", "ü-nicode"],
)
def test_an_insane_client_request_id_is_replaced(client, bad):
    response = client.get("/health/live", headers={"X-Request-ID": bad})
    assert GENERATED.fullmatch(response["X-Request-ID"])


def test_errors_carry_the_request_id_too(client):
    response = client.get("/no/such/page", headers={"X-Request-ID": "abc-123"})
    assert response.status_code == 404
    assert response["X-Request-ID"] == "abc-123"
