"""The admin site: django-otp's, so staff without a verified second factor cannot reach it."""

from __future__ import annotations

from django_otp.admin import OTPAdminSite

from .forms import AdminLoginForm


class TwoFactorAdminSite(OTPAdminSite):
    """`OTPAdminSite` (staff must be verified by one of their devices) under the usual name, so
    `admin:` URLs keep working, with a login form asking for the password and a code at once."""

    login_form = AdminLoginForm
    login_template = "twofactor/admin_login.html"

    def __init__(self, name: str = "admin"):
        super().__init__(name)
