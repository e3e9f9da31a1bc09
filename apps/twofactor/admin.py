"""Staff manage authenticators, backup codes and passkeys in the admin (never seeing a secret
they did not ask for), show a new authenticator's QR code to a person at a desk, and reset or
unlock a person's second factor."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django_otp.conf import settings as otp_settings
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice as PlainTOTPDevice

from apps.accounts.admin import PersonAdmin
from apps.accounts.models import User

from . import services
from .models import (
    BackupCodeDevice,
    Passkey,
    SealedTOTPDevice,
    SecondFactorLock,
    SecurityEvent,
    SecurityNotification,
    TrustedBrowser,
)
from .passkeys import services as passkey_services
from .qr import qr_svg

# django-otp's own devices keep their secrets in clear: migration 0003 moved them into this app's
# sealed ones, and no screen should make new ones.
admin.site.unregister(PlainTOTPDevice)
admin.site.unregister(StaticDevice)
admin.site.unregister(User)

THROTTLING_FIELDS = ["throttling_failure_count", "throttling_failure_timestamp"]


@admin.register(User)
class PersonWithSecondFactorAdmin(PersonAdmin):
    """The people admin of apps.accounts, plus what staff do about a person's second factor."""

    actions = ["reset_second_factor", "unlock_second_factor"]

    @admin.action(
        description=gettext_lazy(
            "Reset two-factor authentication (remove devices, backup codes and tokens)"
        ),
        permissions=["change"],
    )
    def reset_second_factor(self, request, queryset):
        people = 0
        for user in queryset:
            removed = services.reset_second_factor(user=user, request=request)
            people += 1
            self.log_change(
                request,
                user,
                ngettext(
                    "Reset two-factor authentication (%(count)d device).",
                    "Reset two-factor authentication (%(count)d devices).",
                    removed,
                )
                % {"count": removed},
            )
        message = ngettext(
            "Two-factor authentication reset for %(count)d person: they log in with their "
            "password and enrol a new authenticator.",
            "Two-factor authentication reset for %(count)d people: they log in with their "
            "password and enrol a new authenticator.",
            people,
        )
        self.message_user(request, message % {"count": people}, messages.SUCCESS)

    @admin.action(
        description=gettext_lazy("Unlock the second factor (after too many wrong codes)"),
        permissions=["change"],
    )
    def unlock_second_factor(self, request, queryset):
        unlock_people(self, request, queryset)


def unlock_people(model_admin: admin.ModelAdmin, request, people) -> None:
    unlocked = 0
    for user in people:
        if services.unlock_second_factor(user=user, request=request):
            model_admin.log_change(request, user, _("Unlocked the second factor."))
            unlocked += 1
    message = ngettext(
        "Second factor unlocked for %(count)d person.",
        "Second factor unlocked for %(count)d people.",
        unlocked,
    )
    model_admin.message_user(request, message % {"count": unlocked}, messages.SUCCESS)


@admin.register(SealedTOTPDevice)
class SealedTOTPDeviceAdmin(admin.ModelAdmin):
    """Authenticator apps. The key is never a field: a new device gets a random one, sealed, and
    the QR code page (unless OTP_ADMIN_HIDE_SENSITIVE_DATA) is the only screen that shows it."""

    list_display = ["user", "name", "confirmed", "created_at", "last_used_at"]
    list_filter = ["confirmed", "created_at", "last_used_at"]
    search_fields = ["user__username", "name"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    readonly_fields = ["created_at", "last_used_at", "drift", "last_t", *THROTTLING_FIELDS]
    fieldsets = [
        (gettext_lazy("Identity"), {"fields": ["user", "name", "confirmed"]}),
        (gettext_lazy("Timestamps"), {"fields": ["created_at", "last_used_at"]}),
        (gettext_lazy("Configuration"), {"fields": ["step", "t0", "digits", "tolerance"]}),
        (gettext_lazy("State"), {"fields": ["drift", "last_t", *THROTTLING_FIELDS]}),
    ]
    radio_fields = {"digits": admin.HORIZONTAL}

    def get_list_display(self, request):
        if otp_settings.OTP_ADMIN_HIDE_SENSITIVE_DATA:
            return self.list_display
        return [*self.list_display, "qr_code_link"]

    @admin.display(description=gettext_lazy("QR code"))
    def qr_code_link(self, device: SealedTOTPDevice) -> str:
        url = reverse("admin:twofactor_sealedtotpdevice_config", args=[device.pk])
        return format_html('<a href="{}">{}</a>', url, _("QR code"))

    def get_urls(self):
        config = self.admin_site.admin_view(self.config_view)
        return [
            path("<int:pk>/config/", config, name="twofactor_sealedtotpdevice_config"),
            *super().get_urls(),
        ]

    def config_view(self, request, pk):
        """The QR code and key, drawn inline as on the enrolment page, to enrol at a desk."""
        if otp_settings.OTP_ADMIN_HIDE_SENSITIVE_DATA:
            raise PermissionDenied
        device = get_object_or_404(SealedTOTPDevice.objects.select_related("user"), pk=pk)
        if not self.has_view_or_change_permission(request, device):
            raise PermissionDenied
        uri = services.provisioning_uri(device=device)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Scan to enrol: %(device)s") % {"device": device},
            "device": device,
            "opts": self.opts,
            "qr_svg": qr_svg(
                uri,
                label=_("QR code to add %(person)s to an authenticator app")
                % {"person": device.user},
            ),
            "secret": services.grouped_secret(device=device),
        }
        return TemplateResponse(request, "twofactor/admin_device_qr.html", context)

    def delete_model(self, request, obj):
        """Removed as the person's page removes one: recorded, and the person told."""
        services.remove_totp_device(device=obj, request=request)

    def delete_queryset(self, request, queryset):
        for device in queryset:
            services.remove_totp_device(device=device, request=request)


@admin.register(BackupCodeDevice)
class BackupCodeDeviceAdmin(admin.ModelAdmin):
    """A person's backup codes: how many are left, never the codes (only their hashes exist).
    Staff delete a set to void it; the person generates a new one."""

    list_display = ["user", "codes_left", "created_at", "last_used_at"]
    search_fields = ["user__username"]
    list_select_related = ["user"]
    readonly_fields = ["user", "name", "codes_left", "created_at", "last_used_at"]
    fields = [*readonly_fields, *THROTTLING_FIELDS]

    def has_add_permission(self, request):
        return False

    @admin.display(description=gettext_lazy("codes left"))
    def codes_left(self, device: BackupCodeDevice) -> int:
        return device.codes.count()


@admin.register(SecondFactorLock)
class SecondFactorLockAdmin(admin.ModelAdmin):
    """People whose codes keep failing: how many in a row, and whether that locked them out."""

    list_display = ["user", "consecutive_failures", "locked_at"]
    list_filter = [("locked_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username"]
    list_select_related = ["user"]
    readonly_fields = ["user", "consecutive_failures", "locked_at"]
    actions = ["unlock"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description=gettext_lazy("Unlock their second factor"), permissions=["view"])
    def unlock(self, request, queryset):
        unlock_people(self, request, User.objects.filter(second_factor_lock__in=queryset))


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
        passkey_services.remove_passkey(passkey=obj, request=request, by="staff")

    def delete_queryset(self, request, queryset):
        for passkey in queryset:
            passkey_services.remove_passkey(passkey=passkey, request=request, by="staff")


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record staff read and never change: no add, change or delete (old rows are pruned by
    their command)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SecurityEvent)
class SecurityEventAdmin(ReadOnlyAdmin):
    """Everyone's security events, to investigate: filter by kind and person, search by name,
    address or request id (which finds the request's log lines)."""

    list_display = ["at", "kind", "user", "ip", "request_id"]
    list_filter = ["kind", ("user", admin.RelatedOnlyFieldListFilter), "at"]
    search_fields = ["user__username", "ip", "request_id", "user_agent"]
    list_select_related = ["user"]
    date_hierarchy = "at"
    fields = ["at", "kind", "user", "ip", "user_agent", "request_id", "details"]


@admin.register(SecurityNotification)
class SecurityNotificationAdmin(ReadOnlyAdmin):
    """The emails about security events: sent, or pending (and why the last attempt failed)."""

    list_display = ["event", "created_at", "sent_at", "attempts", "last_error"]
    list_filter = [("sent_at", admin.EmptyFieldListFilter), "event__kind"]
    search_fields = ["event__user__username"]
    list_select_related = ["event__user"]
    fields = ["event", "created_at", "sent_at", "attempts", "last_error"]


@admin.register(TrustedBrowser)
class TrustedBrowserAdmin(admin.ModelAdmin):
    """Browsers people trusted to skip the code step: staff see them and revoke them (delete);
    only the person trusts one, at a login. The secret's digest is never shown."""

    list_display = ["user", "user_agent", "created_at", "last_used_at", "expires_at"]
    list_filter = ["created_at", "last_used_at", "expires_at"]
    search_fields = ["user__username", "user_agent"]
    list_select_related = ["user"]
    fields = ["user", "user_agent", "device", "created_at", "last_used_at", "expires_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
