"""Staff see the counters and their totals; nobody edits them (hits are counted, not typed)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .models import HitCounter
from .selectors import pending_hits


@admin.register(HitCounter)
class HitCounterAdmin(admin.ModelAdmin):
    list_display = ["name", "total", "pending", "updated"]
    search_fields = ["name"]
    fields = ["name", "total", "pending", "updated"]
    readonly_fields = fields

    @admin.display(description=_("pending in Redis"))
    def pending(self, counter: HitCounter) -> int | str:
        pending = pending_hits(counter.name)
        return _("unavailable") if pending is None else pending

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
