"""The browser pages: login in two steps, the two-factor page, enrolment with a QR code, removal,
backup codes. Server-rendered, no JavaScript; every code is checked by `verification.py`.

GET and HEAD change nothing (no device, no key, no count): what a page needs to make, a POST
makes. The one thing a GET takes away is what Django's messages take away when shown: new
backup codes leave the session once their page has shown them (after the POST that made them).
A refused attempt answers 429 with Retry-After, the page showing how long to wait; a locked
second factor, 403. Nothing secret rests in the session in clear: a key being added and
new backup codes waiting to be shown are sealed (`sealing.py`) like the keys in the database.
"""

from __future__ import annotations

import json
import time
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login

from apps.accounts.models import User

from . import events, reauth, selectors, services
from .forms import ConfirmDeviceForm, EnrolmentForm, LoginForm, ReauthenticateForm
from .passkeys import selectors as passkey_selectors
from .passkeys.challenges import session_binding
from .passkeys.forms import AddPasskeyForm, PasskeyForm, form_status, second_factor_forms
from .qr import qr_svg
from .sealing import seal, unseal
from .trusted_browsers import cookies as trust_cookies
from .trusted_browsers import login as trust
from .trusted_browsers import services as trust_services

# Between the password and the code, the session holds who is logging in, not a logged-in user.
PENDING_LOGIN = "twofactor_pending_login"
# The key of an authenticator being added (sealed), until its first code makes it a device: a
# reload shows the same QR code, and an enrolment never finished leaves nothing behind.
PENDING_ENROLMENT = "twofactor_pending_enrolment"
# New backup codes (sealed) between the POST that made them and the page that shows them, once.
NEW_BACKUP_CODES = "twofactor_new_backup_codes"
# What someone TWO_FACTOR_REQUIRED covers is told on their way to the enrolment page.
ENROL_MESSAGE = gettext_lazy(
    "This site needs a second factor: add an authenticator app or a passkey."
)
# A page is read with GET or HEAD (which change nothing) and its form sent with POST.
PAGE_METHODS = ["GET", "HEAD", "POST"]


def _next_url(request: HttpRequest) -> str:
    """Where to go after a step: the `next` the page was given when it is on this site."""
    candidate = request.POST.get("next") or request.GET.get("next")
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _with_next(url: str, next_url: str) -> str:
    return f"{url}?{urlencode({'next': next_url})}"


def _page(request: HttpRequest, template: str, context: dict, *, form=None) -> HttpResponse:
    """The page with its form's status (`form_status`): 429 with Retry-After when it was refused
    for too many attempts, 403 when the person's second factor is locked, 400 when the browser's
    passkey answer was refused."""
    response = render(request, template, context, status=form_status(form))
    retry_after = getattr(form, "retry_after", None)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def _second_factor_guard(request: HttpRequest, *, enrolling: bool) -> HttpResponse | None:
    """Where a logged-in person must go first, if anywhere: the code step when they have a
    second factor and this session was not verified by it; enrolment when TWO_FACTOR_REQUIRED
    covers them and they have none (unless this page is part of enrolling)."""
    has_factor = selectors.has_second_factor(user=request.user)
    if has_factor and not request.user.is_verified():
        return redirect_to_login(request.get_full_path(), reverse("twofactor:login-code"))
    if not has_factor and not enrolling and selectors.covered_by_policy(user=request.user):
        messages.info(request, ENROL_MESSAGE)
        return redirect(_with_next(reverse("twofactor:add"), request.get_full_path()))
    return None


def second_factor_checked(view):
    """A page of a person's account: logged in, verified by their second factor when they have
    one, and enrolled when the policy asks them to be; otherwise off to that step, which comes
    back here."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return _second_factor_guard(request, enrolling=False) or view(request, *args, **kwargs)

    return wrapper


def enrolment_page(view):
    """A page someone the policy covers may open before they have a second factor: enrolling
    one, and confirming it is them to do so."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return _second_factor_guard(request, enrolling=True) or view(request, *args, **kwargs)

    return wrapper


def reauthentication_required(view):
    """Changing factors: the password or a code must have been entered in this session within
    TWO_FACTOR_REAUTH_SECONDS; otherwise the "confirm it's you" step, which comes back here."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not reauth.session_is_recent(request):
            url = reverse("twofactor:reauthenticate")
            return redirect(_with_next(url, request.get_full_path()))
        return view(request, *args, **kwargs)

    return wrapper


# --- Login ----------------------------------------------------------------------------------------


@sensitive_post_parameters("password")
@never_cache
@require_http_methods(PAGE_METHODS)
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = _next_url(request)
    if request.user.is_authenticated:
        return redirect(next_url)
    form = LoginForm(request.POST or None, request=request)
    if request.method == "POST" and form.is_valid():
        return _after_password(request, user=form.user, next_url=next_url)
    context = {"form": form, "next": next_url, "passkey_form": PasskeyForm(binding="")}
    return _page(request, "twofactor/login.html", context, form=form)


def _after_password(request: HttpRequest, *, user: User, next_url: str) -> HttpResponse:
    """People with a device go on to the code step, unless this browser is one they trusted
    (then its device verifies the session); others are logged in (and sent to enrol when
    TWO_FACTOR_REQUIRED covers them)."""
    if selectors.has_second_factor(user=user):
        trusted_by = trust.vouching_device(request, user=user)
        if trusted_by is not None:
            auth_login(request, user)
            otp_login(request, trusted_by)
            reauth.mark_session(request)  # the password was just entered
            events.record(
                "login",
                user=user,
                request=request,
                via="pages",
                second_factor=selectors.device_kind(trusted_by),
                trusted_browser=True,
            )
            return redirect(next_url)
        request.session[PENDING_LOGIN] = {
            "user_id": user.pk,
            "backend": user.backend,
            "started": time.time(),
            # A password changed or reset before the code step ends this login too.
            "auth_hash": user.get_session_auth_hash(),
        }
        return redirect(_with_next(reverse("twofactor:login-code"), next_url))
    auth_login(request, user)
    reauth.mark_session(request)  # the password was just entered
    events.record("login", user=user, request=request, via="pages", second_factor=None)
    if services.second_factor_required(user=user, enrolled=False):
        messages.info(request, ENROL_MESSAGE)
        _start_enrolment(request)
        return redirect(_with_next(reverse("twofactor:add"), next_url))
    return redirect(next_url)


@sensitive_post_parameters("code")
@never_cache
@require_http_methods(PAGE_METHODS)
def login_code_view(request: HttpRequest) -> HttpResponse:
    """The second step: a passkey (offered first) or a code for the person who gave their
    password (or who is logged in but not yet verified by a device)."""
    user = code_step_user(request)
    if user is None:
        if request.user.is_authenticated:  # nothing to verify
            return redirect(_next_url(request))
        messages.info(request, _("Log in with your password first."))
        return redirect(_with_next(reverse("twofactor:login"), _next_url(request)))
    code_form, passkey_form, form = second_factor_forms(request, user=user)
    if request.method == "POST" and form.is_valid():
        pending = request.session.pop(PENDING_LOGIN, None)
        if pending is not None:
            auth_login(request, user, backend=pending["backend"])
        otp_login(request, form.device)
        reauth.mark_session(request)  # a code was just entered
        second_factor = selectors.device_kind(form.device)
        events.record("login", user=user, request=request, via="pages", second_factor=second_factor)
        response = redirect(_next_url(request))
        trust.trust_if_asked(request, response, user=user, device=form.device)
        return response
    trust_code_form, trust_passkey_form = trust.trust_forms()
    context = {
        "trust_form": trust_code_form,
        "trust_passkey_form": trust_passkey_form,
        "form": code_form,
        "passkey_form": passkey_form,
        "has_codes": selectors.has_code_factor(user=user),
        "next": _next_url(request),
        "person": user,
    }
    return _page(request, "twofactor/login_code.html", context, form=form)


def code_step_user(request: HttpRequest) -> User | None:
    """Who the second step of a login is for: the person logged in but not verified, or the one
    who gave their password within OTP_LOGIN_TIMEOUT; None when there is no such step."""
    if request.user.is_authenticated:
        if request.user.is_verified() or not selectors.has_second_factor(user=request.user):
            return None
        return request.user
    pending = request.session.get(PENDING_LOGIN)
    if pending is None or time.time() - pending["started"] > settings.OTP_LOGIN_TIMEOUT:
        return None  # an expired step is replaced by the next password step
    user = User.objects.filter(pk=pending["user_id"], is_active=True).first()
    if user is None or not constant_time_compare(
        pending.get("auth_hash", ""), user.get_session_auth_hash()
    ):
        return None  # the password changed since it was entered: log in again
    return user


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    auth_logout(request)
    return redirect(settings.LOGOUT_REDIRECT_URL)


# --- Two-factor page ------------------------------------------------------------------------------


@never_cache
@second_factor_checked
def overview_view(request: HttpRequest) -> HttpResponse:
    return render_overview(request)


def render_overview(
    request: HttpRequest, *, add_passkey_form: AddPasskeyForm | None = None, status: int = 200
) -> HttpResponse:
    """The two-factor page, with the "Add a passkey" form as posted when it was refused."""
    context = {
        "overview": selectors.overview(user=request.user),
        "passkeys": passkey_selectors.passkeys(user=request.user),
        "add_passkey_form": add_passkey_form or AddPasskeyForm(binding="", user=request.user),
        # Adding a factor needs the re-authentication window: outside it, "Confirm it's you".
        "reauthenticated": reauth.session_is_recent(request),
        "trusted_browsers": trust_services.trusted_browsers(user=request.user),
        "this_browser": trust_services.trust_digest(
            user=request.user, cookie=trust_cookies.read(request)
        ),
    }
    return render(request, "twofactor/overview.html", context, status=status)


@sensitive_post_parameters("code")
@never_cache
@enrolment_page
@reauthentication_required
@require_http_methods(PAGE_METHODS)
def add_device_view(request: HttpRequest) -> HttpResponse:
    """ "Add authenticator", or a passkey instead: the enrolment page, which someone the policy
    covers reaches before they have any factor. A POST without a code starts an enrolment: a new
    key, kept sealed in the session. GET shows it (QR code, key, a form for the first code), or a
    button to start one; either way "Add a passkey" beside it. A POST with the first code makes
    the device, confirmed; a POST with a passkey (static/js/passkeys.js) registers that instead.
    """
    if request.method == "POST" and "passkey" in request.POST:
        return _enrol_passkey(request)
    pending = request.session.get(PENDING_ENROLMENT)
    if request.method == "POST" and "code" not in request.POST:
        if pending is None:
            _start_enrolment(request)
        url = reverse("twofactor:add")
        return redirect(_with_next(url, request.GET["next"]) if request.GET.get("next") else url)
    if pending is None and request.method == "POST":
        # A code for an enrolment that has ended (e.g. another tab).
        messages.info(request, _("That enrolment has ended: start again."))
    return _render_enrolment(request, form_data=request.POST or None)


def _render_enrolment(
    request: HttpRequest,
    *,
    form_data=None,
    add_passkey_form: AddPasskeyForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """The enrolment page as it stands: the started enrolment's QR code and its code form (bound
    to `form_data`), or the button that starts one; and "Add a passkey" (`add_passkey_form` as
    posted when it was refused)."""
    passkey_context = {
        "add_passkey_form": add_passkey_form or AddPasskeyForm(binding="", user=request.user),
        "next": request.POST.get("next") or request.GET.get("next", ""),
    }
    pending = request.session.get(PENDING_ENROLMENT)
    if pending is None:
        return render(request, "twofactor/add_device.html", passkey_context, status=status)
    device = services.pending_totp_device(user=request.user, sealed_key=pending["sealed_key"])
    form = EnrolmentForm(form_data, device=device, request=request)
    if form_data is not None and form.is_valid():
        request.session.pop(PENDING_ENROLMENT, None)
        return _device_added(request, form.device)
    context = _enrolment_context(request, device, form=form, action=reverse("twofactor:add"))
    context.update(passkey_context)
    return render(request, "twofactor/confirm_device.html", context, status=status)


def _enrol_passkey(request: HttpRequest) -> HttpResponse:
    """ "Add a passkey" on the enrolment page: a passkey is a factor as good as an authenticator
    (issue #18), so it satisfies TWO_FACTOR_REQUIRED as well. The key of an enrolment started
    beside it is dropped, as for an enrolment never finished."""
    binding = session_binding(request.session)
    form = AddPasskeyForm(request.POST, binding=binding, user=request.user, request=request)
    if not form.is_valid():
        return _render_enrolment(request, add_passkey_form=form, status=form_status(form))
    request.session.pop(PENDING_ENROLMENT, None)
    otp_login(request, form.passkey)  # this session has shown the new factor
    messages.success(request, _("Passkey “%(name)s” added.") % {"name": form.passkey.name})
    return redirect(_next_url(request))


def _start_enrolment(request: HttpRequest) -> None:
    request.session[PENDING_ENROLMENT] = {"sealed_key": services.new_totp_key()}


def _device_added(request: HttpRequest, device) -> HttpResponse:
    otp_login(request, device)
    messages.success(
        request, _("Authenticator added. Now get backup codes, in case you lose your phone.")
    )
    return redirect(_next_url(request))


def _enrolment_context(request: HttpRequest, device, *, form, action: str) -> dict:
    uri = services.provisioning_uri(device=device)
    return {
        "next": request.GET.get("next", ""),
        "form": form,
        "device": device,
        "action": action,
        "qr_svg": qr_svg(uri, label=_("QR code to scan with your authenticator app")),
        "secret": services.grouped_secret(device=device),
        "issuer": settings.OTP_TOTP_ISSUER,
    }


@sensitive_post_parameters("code")
@never_cache
@enrolment_page
@reauthentication_required
@require_http_methods(PAGE_METHODS)
def confirm_device_view(request: HttpRequest, device_id: int) -> HttpResponse:
    """An unconfirmed device made elsewhere (the mobile API): its QR code, its key and the form for
    the first code."""
    device = selectors.unconfirmed_totp_device(user=request.user, device_id=device_id)
    if device is None:
        raise Http404("No authenticator of yours is waiting for confirmation here.")
    form = ConfirmDeviceForm(request.POST or None, device=device, request=request)
    if request.method == "POST" and form.is_valid():
        return _device_added(request, device)
    action = reverse("twofactor:confirm", kwargs={"device_id": device.pk})
    context = _enrolment_context(request, device, form=form, action=action)
    return _page(request, "twofactor/confirm_device.html", context, form=form)


@never_cache
@second_factor_checked
@reauthentication_required
@require_http_methods(PAGE_METHODS)
def remove_device_view(request: HttpRequest, device_id: int) -> HttpResponse:
    """Remove an authenticator: confirmed with a button, the person having entered their password
    or a code within the re-authentication window."""
    device = selectors.totp_device(user=request.user, device_id=device_id)
    if device is None:
        raise Http404("You have no such authenticator.")
    if request.method == "POST":
        name = device.name
        # django-otp ties a verified session to one device: any confirmed one left, or none.
        session_device = services.remove_totp_device(device=device, request=request)
        if session_device is not None:
            otp_login(request, session_device)
        messages.success(request, _("Removed “%(name)s”.") % {"name": name})
        return redirect("twofactor:overview")
    return render(request, "twofactor/remove_device.html", {"device": device})


@never_cache
@second_factor_checked
@reauthentication_required
@require_http_methods(PAGE_METHODS)
def backup_codes_view(request: HttpRequest) -> HttpResponse:
    """Generate (or regenerate) ten backup codes, then redirect: the page the browser lands on
    shows them, once (a reload shows them no more). Between the two they wait in the session,
    sealed."""
    overview = selectors.overview(user=request.user)
    enrolled = selectors.has_second_factor(user=request.user, besides_backup_codes=True)
    if request.method == "POST" and enrolled:
        codes = services.generate_backup_codes(user=request.user, request=request)
        request.session[NEW_BACKUP_CODES] = seal(json.dumps(codes).encode())
        return redirect("twofactor:backup-codes")
    # Only GET takes them: a HEAD (a link checker, a prefetch) must not lose them unseen.
    sealed = request.session.pop(NEW_BACKUP_CODES, None) if request.method == "GET" else None
    codes = json.loads(unseal(sealed)) if sealed else None
    context = {"overview": overview, "enrolled": enrolled, "codes": codes}
    return render(request, "twofactor/backup_codes.html", context)


# --- Confirm it's you -----------------------------------------------------------------------------


@sensitive_post_parameters("password", "code", "passkey")
@never_cache
@enrolment_page
@require_http_methods(PAGE_METHODS)
def reauthenticate_view(request: HttpRequest) -> HttpResponse:
    """ "Confirm it's you": the password, a current code or a passkey again before factors
    change, then back to the page that asked."""
    data = request.POST if request.method == "POST" else None
    by_passkey = data is not None and "passkey" in data
    form = ReauthenticateForm(None if by_passkey else data, request=request)
    passkey_form = None
    if by_passkey or passkey_selectors.has_passkey(user=request.user):
        binding = session_binding(request.session)
        passkey_form = PasskeyForm(
            data if by_passkey else None, binding=binding, user=request.user, request=request
        )
    posted = passkey_form if by_passkey else form
    if request.method == "POST" and posted.is_valid():
        if by_passkey:
            reauth.mark_session(request)
            events.record("reauthenticated", user=request.user, request=request, by="passkey")
        return redirect(_next_url(request))
    context = {"form": form, "passkey_form": passkey_form, "next": _next_url(request)}
    return _page(request, "twofactor/reauthenticate.html", context, form=posted)
