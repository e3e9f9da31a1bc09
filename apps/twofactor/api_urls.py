"""The mobile API, under /api/v1/."""

from django.urls import include, path

from . import api, api_devices, api_events

app_name = "twofactor-api"

urlpatterns = [
    path("auth/token", api.TokenView.as_view(), name="token"),
    path("auth/reauthenticate", api.ReauthenticateView.as_view(), name="reauthenticate"),
    path("otp/devices", api_devices.DevicesView.as_view(), name="devices"),
    path("otp/devices/<int:device_id>", api_devices.DeviceView.as_view(), name="device"),
    path(
        "otp/devices/<int:device_id>/confirm",
        api_devices.ConfirmDeviceView.as_view(),
        name="device-confirm",
    ),
    path("otp/backup-codes", api_devices.BackupCodesView.as_view(), name="backup-codes"),
    path("otp/verify", api.VerifyView.as_view(), name="verify"),
    path("account/events", api_events.SecurityEventsView.as_view(), name="events"),
    path("otp/check/<str:token>", api.CheckView.as_view(), name="check"),
    path("", include("apps.twofactor.passkeys.api_urls")),
]
