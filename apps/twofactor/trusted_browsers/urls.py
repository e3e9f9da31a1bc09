"""Revoking trusted browsers, under /account/two-factor/."""

from django.urls import path

from . import views

urlpatterns = [
    path(
        "two-factor/trusted-browsers/<int:browser_id>/revoke/",
        views.revoke_view,
        name="trusted-browser-revoke",
    ),
    path(
        "two-factor/trusted-browsers/revoke/",
        views.revoke_all_view,
        name="trusted-browsers-revoke",
    ),
]
