"""What the login pages ask of trusted browsers: may this browser skip the code step, and trust
it when the person asked to at that step."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_otp.models import Device

from apps.accounts.models import User

from . import cookies, services
from .forms import TrustBrowserForm

USER_AGENT_HEADER = "HTTP_USER_AGENT"


def vouching_device(request: HttpRequest, *, user: User) -> Device | None:
    """The device that verifies `user`'s session when this browser is trusted by them, else None
    (the code step is needed)."""
    return services.vouching_device(user=user, cookie=cookies.read(request))


def trust_forms() -> tuple[TrustBrowserForm, TrustBrowserForm] | tuple[None, None]:
    """The checkbox for the code form and for the passkey form of the code step (their own ids,
    being on one page); none when TWO_FACTOR_TRUST_DAYS is 0."""
    if not settings.TWO_FACTOR_TRUST_DAYS:
        return None, None
    return TrustBrowserForm(auto_id="id_%s"), TrustBrowserForm(auto_id="id_passkey_%s")


def trust_if_asked(
    request: HttpRequest, response: HttpResponse, *, user: User, device: Device
) -> None:
    """After the code step succeeded with `device`: trust this browser when the box was ticked,
    setting the cookie on `response`."""
    if TrustBrowserForm(request.POST).wanted:
        trust = services.trust_browser(
            user=user,
            device=device,
            user_agent=request.META.get(USER_AGENT_HEADER, ""),
            replacing=cookies.read(request),
        )
        cookies.remember(response, trust)
