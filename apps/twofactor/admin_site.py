"""The admin site: django-otp's, so staff without a verified second factor cannot reach it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django_otp.admin import OTPAdminSite

from . import events, selectors
from .forms import AdminLoginForm


class TwoFactorAdminSite(OTPAdminSite):
    """`OTPAdminSite` (staff must be verified by one of their devices) under the usual name, so
    `admin:` URLs keep working, with a login form asking for the password and a code at once."""

    login_form = AdminLoginForm
    login_template = "twofactor/admin_login.html"

    def __init__(self, name: str = "admin"):
        super().__init__(name)

    def login(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        """Django's admin login, answering 429 with Retry-After when the password or the code was
        refused for too many attempts, as the pages do (Django's view would answer 200)."""
        response = super().login(request, extra_context)
        # A login that went through: the form put the device that accepted the code on the user.
        device = getattr(request.user, "otp_device", None)
        if request.method == "POST" and response.status_code == 302 and device is not None:
            events.record(
                "login",
                user=request.user,
                request=request,
                via="admin",
                second_factor=selectors.device_kind(device),
            )
        form = (getattr(response, "context_data", None) or {}).get("form")
        retry_after = getattr(form, "retry_after", None)
        if retry_after is not None:
            response.status_code = 429
            response["Retry-After"] = str(retry_after)
        return response
