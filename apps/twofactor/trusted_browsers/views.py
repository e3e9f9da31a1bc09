"""Revoking trusted browsers from the two-factor page: one, or all of them (POST, CSRF)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from ..views import second_factor_checked
from . import cookies, services


@never_cache
@require_POST
@second_factor_checked
def revoke_view(request: HttpRequest, browser_id: int) -> HttpResponse:
    """Revoke one trusted browser; this browser's cookie goes too when it is the one."""
    browser = services.revoke_trusted_browser(user=request.user, browser_id=browser_id)
    if browser is None:
        raise Http404(gettext("You have no such trusted browser."))
    messages.success(request, gettext("That browser will ask for your code again."))
    response = redirect("twofactor:overview")
    if browser.digest == services.trust_digest(user=request.user, cookie=cookies.read(request)):
        cookies.forget(response)
    return response


@never_cache
@require_POST
@second_factor_checked
def revoke_all_view(request: HttpRequest) -> HttpResponse:
    """Revoke every browser the person trusted, this one included."""
    revoked = services.revoke_trusted_browsers(user=request.user)
    messages.success(
        request,
        ngettext(
            "%(count)d browser will ask for your code again.",
            "%(count)d browsers will ask for your code again.",
            revoked,
        )
        % {"count": revoked},
    )
    response = redirect("twofactor:overview")
    cookies.forget(response)
    return response
