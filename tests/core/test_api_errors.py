"""API paths answer problem+json to everyone, browsers included; pages answer browsers in HTML.
Who may call comes before what they accept: 401 before 406."""

from __future__ import annotations

import pytest

from apps.accounts.tokens import issue_user_token
from tests.problems import assert_problem

pytestmark = pytest.mark.django_db

# What Chromium sends for a page it navigates to.
CHROMIUM = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
HTML_ONLY = {"Accept": "text/html"}


def test_an_api_call_without_a_token_asking_for_html_is_401_not_406(client):
    response = client.get("/api/v1/otp/devices", headers=HTML_ONLY)
    assert_problem(response, 401)
    assert response["WWW-Authenticate"] == 'Bearer realm="dbapi"'


def test_an_api_call_with_a_bad_token_asking_for_html_is_401_not_406(client):
    headers = {**HTML_ONLY, "Authorization": "Bearer not-a-token"}
    assert_problem(client.get("/api/v1/otp/devices", headers=headers), 401)


def test_an_allowed_api_call_asking_only_for_html_is_then_406(client, django_user_model):
    person = django_user_model.objects.create_user("alice", password="x" * 20)
    token = issue_user_token(user=person).key
    headers = {**HTML_ONLY, "Authorization": f"Bearer {token}"}
    assert_problem(client.get("/api/v1/otp/devices", headers=headers), 406)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/v1/no/such/thing", 404),
        ("get", "/actions/example/bar", 405),
        ("get", "/api/v1/otp/devices", 401),
        ("get", "/api/v1/otp/check/123456", 401),
    ],
)
def test_api_errors_are_problem_json_even_for_a_browser(client, method, path, status):
    assert_problem(getattr(client, method)(path, headers=CHROMIUM), status)


def test_a_page_error_for_a_browser_is_an_html_page(client):
    response = client.get("/account/no/such/page/", headers=CHROMIUM)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert b"Not found" in response.content
