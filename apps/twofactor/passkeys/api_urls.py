"""The passkey API, under /api/v1/passkeys (included by apps/twofactor/api_urls.py)."""

from django.urls import path

from . import api

urlpatterns = [
    path("passkeys", api.PasskeysView.as_view(), name="passkeys"),
    path("passkeys/<int:passkey_id>", api.PasskeyView.as_view(), name="passkey"),
    path(
        "passkeys/register/options",
        api.RegisterOptionsView.as_view(),
        name="passkeys-register-options",
    ),
    path("passkeys/register", api.RegisterView.as_view(), name="passkeys-register"),
    path(
        "passkeys/authenticate/options",
        api.AuthenticateOptionsView.as_view(),
        name="passkeys-authenticate-options",
    ),
    path("passkeys/authenticate", api.AuthenticateView.as_view(), name="passkeys-authenticate"),
]
