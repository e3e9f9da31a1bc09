"""Logging in through the pages, for the password and trusted-browser tests: the password step,
the code step (ticking "Trust this browser" or not) and who the client is logged in as."""

from __future__ import annotations

from django_otp import DEVICE_ID_SESSION_KEY

from apps.twofactor.models import SealedTOTPDevice

from .conftest import PASSWORD, code_for

TRUST_COOKIE = "dbapi_trusted_browser"


def submit_password(client, username: str = "alice", password: str = PASSWORD, next_url=""):
    return client.post(
        "/account/login/", {"username": username, "password": password, "next": next_url}
    )


def submit_code(client, device: SealedTOTPDevice, *, trust: bool = False, steps: int = 0):
    data = {"code": code_for(device, steps=steps)}
    if trust:
        data["trust_browser"] = "on"
    return client.post("/account/login/code/", data)


def log_in(client, device: SealedTOTPDevice, *, trust: bool = False, steps: int = 0) -> None:
    """The password, then the device's code (`steps` time steps ahead, so that two logins in the
    same step each have an unused code)."""
    username = device.user.get_username()
    assert submit_password(client, username)["Location"].startswith("/account/login/code/")
    assert submit_code(client, device, trust=trust, steps=steps).status_code == 302


def session_user_id(client) -> int | None:
    """Whom the client's session logs in, as the next request of its own would see it."""
    response = client.get("/account/two-factor/")
    if response.status_code != 200:
        return None
    return response.wsgi_request.user.pk


def verified_by(client) -> str | None:
    """The persistent id of the device the client's session is verified by, if any."""
    return client.session.get(DEVICE_ID_SESSION_KEY)
