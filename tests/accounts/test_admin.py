"""Staff manage people in the admin."""

import pytest

from apps.accounts.models import User

pytestmark = pytest.mark.django_db


def test_the_custom_user_is_the_auth_user_model(django_user_model):
    assert django_user_model is User


def test_admin_login_page_answers(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert b"Django administration" in response.content or b"dbapi" in response.content


def test_anonymous_visitors_are_sent_to_the_admin_login(client):
    response = client.get("/admin/accounts/user/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
