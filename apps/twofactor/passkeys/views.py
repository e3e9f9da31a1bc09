"""The passkey pages: options for the browser (JSON), adding, renaming and removing passkeys, and
signing in with one. Challenges are bound to the browser's session.

The browser part is static/js/passkeys.js: it asks an options URL, lets the browser create or use
a passkey, and submits the form it belongs to with the answer in a hidden field, so every result
is an ordinary form POST answered with a redirect or the page again.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import devices_for_user
from django_otp import login as otp_login

from .. import events, reauth
from ..forms import LoginForm
from ..models import Passkey
from ..selectors import has_code_factor
from ..views import _next_url as next_url  # the pages' one rule for where to go next
from ..views import (
    code_step_user,
    enrolment_page,
    reauthentication_required,
    render_overview,
    second_factor_checked,
)
from . import selectors, services
from .challenges import session_binding
from .forms import (
    AddPasskeyForm,
    PasskeyForm,
    RenamePasskeyForm,
    form_status,
    second_factor_forms,
)

# `authentication` and `registration` are imported by the views that run a ceremony: they load
# py_webauthn (with pyasn1 and pyOpenSSL), which no other request needs.

# A passwordless sign-in is made by a passkey, not a password backend; the session still names
# a backend, as Django's login requires.
SIGN_IN_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _no_second_step() -> JsonResponse:
    return JsonResponse({"detail": "Log in with your password first."}, status=403)


# --- Options for the browser ------------------------------------------------------------------


@never_cache
@require_POST
@enrolment_page
def register_options_view(request: HttpRequest) -> JsonResponse:
    """Options for "Add a passkey", within the re-authentication window (the two-factor page
    offers "Confirm it's you" instead of the button outside it). An enrolment page: someone the
    policy covers may add a passkey as their first factor (the enrolment page offers it)."""
    from . import registration

    if not reauth.session_is_recent(request):
        return JsonResponse({"detail": "Confirm it is you first."}, status=403)
    binding = session_binding(request.session)
    return JsonResponse(registration.registration_options(user=request.user, binding=binding))


@never_cache
@require_POST
def sign_in_options_view(request: HttpRequest) -> JsonResponse:
    """Options for "Sign in with a passkey" (no password: any discoverable passkey)."""
    from . import authentication

    binding = session_binding(request.session)
    return JsonResponse(authentication.authentication_options(binding=binding))


@never_cache
@require_POST
def second_factor_options_view(request: HttpRequest) -> JsonResponse:
    """Options for a passkey as the second step of a login, or to confirm it is the person
    before a change: among the passkeys of the person at that step, or logged in."""
    from . import authentication

    user = code_step_user(request)
    if user is None and request.user.is_authenticated:
        user = request.user
    if user is None:
        return _no_second_step()
    binding = session_binding(request.session)
    return JsonResponse(authentication.authentication_options(binding=binding, user=user))


# --- Signing in -------------------------------------------------------------------------------


@never_cache
@require_POST
def sign_in_view(request: HttpRequest) -> HttpResponse:
    """A passwordless sign-in: the passkey is both factors."""
    form = PasskeyForm(request.POST, binding=session_binding(request.session), request=request)
    if form.is_valid():
        auth_login(request, form.passkey.user, backend=SIGN_IN_BACKEND)
        otp_login(request, form.passkey)
        events.record(
            "login", user=form.passkey.user, request=request, via="pages", second_factor="passkey"
        )
        return redirect(next_url(request))
    context = {
        "form": LoginForm(request=request),
        "passkey_form": form,
        "next": next_url(request),
    }
    return render(request, "twofactor/login.html", context, status=form_status(form))


# --- Managing passkeys ------------------------------------------------------------------------


@never_cache
@require_POST
@second_factor_checked
@reauthentication_required
def add_passkey_view(request: HttpRequest) -> HttpResponse:
    """ "Add a passkey": keep the browser's new passkey, under the name given."""
    binding = session_binding(request.session)
    form = AddPasskeyForm(request.POST, binding=binding, user=request.user, request=request)
    if not form.is_valid():
        return render_overview(request, add_passkey_form=form, status=400)
    if not request.user.is_verified():
        otp_login(request, form.passkey)  # a first factor added: this session has shown it
    messages.success(request, _("Passkey “%(name)s” added.") % {"name": form.passkey.name})
    return redirect("twofactor:overview")


@never_cache
@second_factor_checked
@require_http_methods(["GET", "POST"])
def rename_passkey_view(request: HttpRequest, passkey_id: int) -> HttpResponse:
    passkey = selectors.passkey(user=request.user, passkey_id=passkey_id)
    if passkey is None:
        raise Http404("You have no such passkey.")
    form = RenamePasskeyForm(request.POST or None, initial={"name": passkey.name})
    if request.method == "POST" and form.is_valid():
        services.rename_passkey(passkey=passkey, name=form.cleaned_data["name"])
        messages.success(request, _("Renamed to “%(name)s”.") % {"name": passkey.name})
        return redirect("twofactor:overview")
    status = 400 if form.is_bound and form.errors else 200
    context = {"form": form, "passkey": passkey}
    return render(request, "twofactor/rename_passkey.html", context, status=status)


@never_cache
@second_factor_checked
@require_http_methods(["GET", "POST"])
def remove_passkey_view(request: HttpRequest, passkey_id: int) -> HttpResponse:
    """Remove a passkey, after a second factor: a passkey (this one will do) or a code."""
    passkey = selectors.passkey(user=request.user, passkey_id=passkey_id)
    if passkey is None:
        raise Http404("You have no such passkey.")
    code_form, passkey_form, form = second_factor_forms(request, user=request.user)
    if request.method == "POST" and form.is_valid():
        name, removed_pk = passkey.name, passkey.pk
        services.remove_passkey(passkey=passkey, request=request)
        _stay_verified(request, accepted_by=form.device, removed_pk=removed_pk)
        messages.success(request, _("Removed “%(name)s”.") % {"name": name})
        return redirect("twofactor:overview")
    context = {
        "form": code_form,
        "passkey_form": passkey_form,
        "has_codes": has_code_factor(user=request.user),
        "passkey": passkey,
    }
    return render(request, "twofactor/remove_passkey.html", context, status=form_status(form))


def _stay_verified(request: HttpRequest, *, accepted_by, removed_pk: int) -> None:
    """django-otp binds a verified session to one device: the one that confirmed the removal,
    unless it is the passkey removed, then any other confirmed device the person has."""
    if isinstance(accepted_by, Passkey) and accepted_by.pk == removed_pk:
        accepted_by = next(devices_for_user(request.user, confirmed=True), None)
    if accepted_by is not None:
        otp_login(request, accepted_by)
