from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.utils.translation import ngettext

from .models import User, UserToken
from .second_factor import reset_second_factor


@admin.register(User)
class PersonAdmin(UserAdmin):
    """Django's user admin, plus resetting a person's second factor."""

    actions = ["reset_second_factor"]

    @admin.action(
        description="Reset two-factor authentication (remove devices, backup codes and tokens)",
        permissions=["change"],
    )
    def reset_second_factor(self, request, queryset):
        people = 0
        for user in queryset:
            removed = reset_second_factor(user=user)
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


@admin.register(UserToken)
class UserTokenAdmin(admin.ModelAdmin):
    """Mobile API tokens: staff see them and revoke them (delete); only the API issues them."""

    list_display = ["key_prefix", "user", "created_at", "expires_at", "verified_at"]
    list_filter = ["verified_at", "expires_at"]
    search_fields = ["user__username", "key_prefix"]
    list_select_related = ["user"]
    readonly_fields = ["user", "key_prefix", "created_at", "expires_at", "verified_at"]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
