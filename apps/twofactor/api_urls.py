"""The mobile API, under /api/v1/."""

from django.urls import include, path

from . import api

app_name = "twofactor-api"

urlpatterns = [
    path("auth/token", api.TokenView.as_view(), name="token"),
    path("otp/devices", api.DevicesView.as_view(), name="devices"),
    path(
        "otp/devices/<int:device_id>/confirm",
        api.ConfirmDeviceView.as_view(),
        name="device-confirm",
    ),
    path("otp/verify", api.VerifyView.as_view(), name="verify"),
    path("otp/check/<str:token>", api.CheckView.as_view(), name="check"),
    path("", include("apps.twofactor.passkeys.api_urls")),
]
