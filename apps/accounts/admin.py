from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import User, UserToken


@admin.register(User)
class PersonAdmin(UserAdmin):
    """Django's user admin. apps.twofactor registers a subclass with its second-factor actions."""


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
