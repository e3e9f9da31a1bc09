"""The passkey pages, under /account/ in the `twofactor` namespace (apps/twofactor/urls.py)."""

from django.urls import path

from . import views

urlpatterns = [
    path("login/passkey/", views.sign_in_view, name="passkey-sign-in"),
    path("login/passkey/options/", views.sign_in_options_view, name="passkey-sign-in-options"),
    path(
        "login/passkey/second-factor/options/",
        views.second_factor_options_view,
        name="passkey-second-factor-options",
    ),
    path("two-factor/passkeys/", views.add_passkey_view, name="passkey-add"),
    path(
        "two-factor/passkeys/options/",
        views.register_options_view,
        name="passkey-register-options",
    ),
    path(
        "two-factor/passkeys/<int:passkey_id>/rename/",
        views.rename_passkey_view,
        name="passkey-rename",
    ),
    path(
        "two-factor/passkeys/<int:passkey_id>/remove/",
        views.remove_passkey_view,
        name="passkey-remove",
    ),
]
