"""The person's security page: what happened to their account, newest first, a page at a time."""

from __future__ import annotations

from django.conf import settings
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from . import selectors
from .models import SecurityEvent
from .views import second_factor_checked

# How the details' values read on the page; a value not named here is shown as it is stored.
DETAIL_WORDS = {
    "pages": _("on the website"),
    "admin": _("in the admin"),
    "api": _("in the app"),
    "totp": _("authenticator app"),
    "backup_code": _("backup code"),
    "passkey": _("passkey"),
    "password": _("password"),
    "code": _("code"),
    "staff": _("by staff"),
}
# The details shown, in this order; others (ids, counts for staff) stay for the admin.
SHOWN_DETAILS = ("via", "second_factor", "device_kind", "code_kind", "method", "by")


@never_cache
@second_factor_checked
@require_http_methods(["GET", "HEAD"])
def security_events_view(request: HttpRequest) -> HttpResponse:
    """`/account/security/`: the person's own events, SECURITY_EVENTS_PAGE_SIZE a page."""
    events = selectors.security_events(user=request.user)
    page = Paginator(events, settings.SECURITY_EVENTS_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"event": event, "details": describe(event)} for event in page]
    return render(request, "twofactor/security_events.html", {"page": page, "rows": rows})


def describe(event: SecurityEvent) -> list[str]:
    """The event's details a person can read: how, where, with what."""
    words = []
    for name in SHOWN_DETAILS:
        value = event.details.get(name)
        if value:
            words.append(str(DETAIL_WORDS.get(value, value)))
    return words
