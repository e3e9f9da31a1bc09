"""Staff manage authenticators in the admin, show a new one's QR code to a person at a desk, and
reset a person's second factor."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django_otp.conf import settings as otp_settings
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.admin import PersonAdmin
from apps.accounts.models import User

from . import services
from .qr import qr_svg

admin.site.unregister(TOTPDevice)
admin.site.unregister(User)


@admin.register(User)
class PersonWithSecondFactorAdmin(PersonAdmin):
    """The people admin of apps.accounts, plus what staff do about a person's second factor."""

    actions = ["reset_second_factor"]

    @admin.action(
        description="Reset two-factor authentication (remove devices, backup codes and tokens)",
        permissions=["change"],
    )
    def reset_second_factor(self, request, queryset):
        for user in queryset:
            removed = services.reset_second_factor(user=user)
            self.log_change(request, user, f"Reset two-factor authentication ({removed} devices).")
        self.message_user(
            request,
            f"Two-factor authentication reset for {queryset.count()} people: they log in with "
            "their password and enrol a new authenticator.",
            messages.SUCCESS,
        )


@admin.register(TOTPDevice)
class DeskTOTPDeviceAdmin(TOTPDeviceAdmin):
    """django-otp's TOTP admin whose QR code page draws the code inline, as the enrolment page
    does, with the key grouped for typing by hand."""

    def config_view(self, request, pk):
        if otp_settings.OTP_ADMIN_HIDE_SENSITIVE_DATA:
            raise PermissionDenied
        device = get_object_or_404(TOTPDevice.objects.select_related("user"), pk=pk)
        if not self.has_view_or_change_permission(request, device):
            raise PermissionDenied
        uri = services.provisioning_uri(device=device)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Scan to enrol: {device}",
            "device": device,
            "opts": self.opts,
            "qr_svg": qr_svg(uri, label=f"QR code to add {device.user} to an authenticator app"),
            "secret": services.grouped_secret(device=device),
        }
        return TemplateResponse(request, "twofactor/admin_device_qr.html", context)
