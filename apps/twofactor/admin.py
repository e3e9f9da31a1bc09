"""Staff manage authenticators and passkeys in the admin, and show a new authenticator's QR code
to a person at a desk."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django_otp.conf import settings as otp_settings
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from . import services
from .models import Passkey
from .passkeys import services as passkey_services
from .qr import qr_svg

admin.site.unregister(TOTPDevice)


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


@admin.register(Passkey)
class PasskeyAdmin(admin.ModelAdmin):
    """Staff see each person's passkeys and remove them (delete); only the person adds them,
    from their browser or the app. Nothing here shows a credential id or a public key."""

    list_display = ["name", "user", "passwordless", "created_at", "last_used_at", "sign_count"]
    list_filter = ["passwordless", "created_at", "last_used_at"]
    search_fields = ["user__username", "name"]
    list_select_related = ["user"]
    fields = [
        "user",
        "name",
        "passwordless",
        "aaguid",
        "transports",
        "sign_count",
        "created_at",
        "last_used_at",
        "throttling_failure_count",
        "throttling_failure_timestamp",
    ]
    readonly_fields = [field for field in fields if field != "name"]

    def has_add_permission(self, request):
        return False

    def delete_model(self, request, obj):
        passkey_services.remove_passkey(passkey=obj)

    def delete_queryset(self, request, queryset):
        for passkey in queryset:
            passkey_services.remove_passkey(passkey=passkey)
