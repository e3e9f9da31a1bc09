"""The admin for API clients: create one (its key shown once), restrict it, revoke it."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .clients import assign_new_key, forget_api_client, revoke_api_client
from .models import ApiClient
from .registry import registry


def cache_unreachable(name: str, seconds: int) -> str:
    """What staff are told when a change could not drop the client's cached key."""
    return ngettext(
        "The cache could not be reached to drop %(name)s's cached key: the change applies "
        "within %(seconds)s second of the cache answering again.",
        "The cache could not be reached to drop %(name)s's cached key: the change applies "
        "within %(seconds)s seconds of the cache answering again.",
        seconds,
    ) % {"name": name, "seconds": seconds}


class ApiClientForm(forms.ModelForm):
    allowed_modules = forms.MultipleChoiceField(
        choices=(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("Allowed modules"),
        help_text=_("Leave all unticked to allow every module."),
    )

    class Meta:
        model = ApiClient
        fields = ["name", "is_active", "allowed_modules", "rate"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        known = sorted(registry.modules)
        # Keep modules a client was given that no longer exist visible, so saving is explicit.
        current = self.instance.allowed_modules if self.instance.pk else []
        self.fields["allowed_modules"].choices = [(m, m) for m in sorted({*known, *current})]


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    form = ApiClientForm
    list_display = [
        "name",
        "key_prefix",
        "is_active",
        "modules",
        "rate",
        "created_at",
        "last_used_at",
    ]
    list_filter = ["is_active"]
    search_fields = ["name", "key_prefix"]
    readonly_fields = ["key_prefix", "created_at", "last_used_at"]
    actions = ["revoke"]

    @admin.display(description=_("modules"))
    def modules(self, client: ApiClient) -> str:
        return ", ".join(client.allowed_modules) or _("all")

    def save_model(self, request, obj: ApiClient, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            # A revocation or a new list of modules applies now, or once the cache answers.
            if not forget_api_client(obj):
                self.warn_cache_unreachable(request, obj)
        else:
            request._new_api_key = assign_new_key(obj)
            super().save_model(request, obj, form, change)

    def response_add(self, request, obj: ApiClient, post_url_continue=None):
        """Show the new key once, on this response only: it is never stored or sent again."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "client": obj,
            "key": request._new_api_key,
            "title": f"API key for {obj.name}",
        }
        return TemplateResponse(request, "admin/actions/apiclient/key_created.html", context)

    def delete_model(self, request, obj: ApiClient) -> None:
        if not forget_api_client(obj):
            self.warn_cache_unreachable(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for client in queryset:
            if not forget_api_client(client):
                self.warn_cache_unreachable(request, client)
        super().delete_queryset(request, queryset)

    @admin.action(description=_("Revoke the selected clients' keys"))
    def revoke(self, request, queryset) -> None:
        revoked = 0
        for client in queryset.filter(is_active=True):
            if not revoke_api_client(client):
                self.warn_cache_unreachable(request, client)
            revoked += 1
        message = ngettext(
            "Revoked %(count)d API client.", "Revoked %(count)d API clients.", revoked
        )
        self.message_user(request, message % {"count": revoked}, messages.SUCCESS)

    def warn_cache_unreachable(self, request, client: ApiClient) -> None:
        message = cache_unreachable(client.name, settings.API_KEY_CACHE_SECONDS)
        self.message_user(request, message, messages.WARNING)
