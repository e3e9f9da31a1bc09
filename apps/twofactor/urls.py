"""The browser pages, under /account/."""

from django.urls import include, path

from . import event_views, views

app_name = "twofactor"

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("login/code/", views.login_code_view, name="login-code"),
    path("logout/", views.logout_view, name="logout"),
    path("reauthenticate/", views.reauthenticate_view, name="reauthenticate"),
    path("two-factor/", views.overview_view, name="overview"),
    path("two-factor/add/", views.add_device_view, name="add"),
    path(
        "two-factor/devices/<int:device_id>/confirm/",
        views.confirm_device_view,
        name="confirm",
    ),
    path(
        "two-factor/devices/<int:device_id>/remove/",
        views.remove_device_view,
        name="remove",
    ),
    path("two-factor/backup-codes/", views.backup_codes_view, name="backup-codes"),
    path("security/", event_views.security_events_view, name="security"),
    path("", include("apps.twofactor.passkeys.urls")),
    path("", include("apps.twofactor.passwords.urls")),
    path("", include("apps.twofactor.trusted_browsers.urls")),
]
