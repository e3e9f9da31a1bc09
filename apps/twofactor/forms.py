"""Forms of the login and two-factor pages, and the admin's login form.

As with Django's AuthenticationForm, cleaning a form checks the password or the code: a valid
form is a checked one (`form.user`, `form.device`).
"""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest
from django.utils.translation import ngettext
from django_otp.models import Device

from apps.accounts.models import User

from . import reauth, selectors, services
from .models import SealedTOTPDevice
from .verification import CodeRefused, CodeThrottled, verify_code

CODE_WIDGET = forms.TextInput(
    attrs={
        "autocomplete": "one-time-code",
        "autocapitalize": "off",
        "spellcheck": "false",
        "autofocus": True,
    }
)
TOTP_WIDGET = forms.TextInput(
    attrs={
        "autocomplete": "one-time-code",
        "inputmode": "numeric",
        "pattern": "[0-9 ]*",
        "autofocus": True,
    }
)

WRONG_CODE = "That code is not valid. Check the time on your phone and try the newest code."


def throttled_message(retry_after: int) -> str:
    return ngettext(
        "Too many attempts. Wait %(seconds)d second, then try again.",
        "Too many attempts. Wait %(seconds)d seconds, then try again.",
        retry_after,
    ) % {"seconds": retry_after}


class Throttleable:
    """For a form whose check can be refused for too many attempts: `retry_after` then says for
    how many seconds, and the page answers 429 with Retry-After."""

    retry_after: int | None = None

    @property
    def throttled(self) -> bool:
        return self.retry_after is not None

    def refuse(self, retry_after: int) -> forms.ValidationError:
        """The error to raise for a throttled check."""
        self.retry_after = retry_after
        return forms.ValidationError(throttled_message(retry_after), code="throttled")

    def code_refused(self, exc: CodeRefused) -> forms.ValidationError:
        """The error to raise when no code is checked: wait (throttled), or ask staff (the
        second factor is locked; the page answers 403)."""
        if isinstance(exc, CodeThrottled):
            return self.refuse(exc.retry_after)
        message = (
            "Too many wrong codes in a row: this account's second factor is locked. Ask staff to "
            "unlock it"
        )
        message += ", or use a backup code." if exc.backup_codes_allowed else "."
        return forms.ValidationError(message, code="locked")


class LoginForm(Throttleable, forms.Form):
    """The first step of a login: username and password."""

    username = forms.CharField(
        max_length=150, widget=forms.TextInput(attrs={"autocomplete": "username"})
    )
    password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )

    def __init__(self, *args, request: HttpRequest, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request
        self.user: User | None = None

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            self.user = services.authenticate_password(
                request=self.request,
                username=data["username"],
                password=data["password"],
                login_via="pages",
            )
        except services.LoginThrottled as exc:
            raise self.refuse(exc.retry_after) from None
        except services.InvalidCredentials:
            raise forms.ValidationError(
                "That username and password do not match.", code="invalid_login"
            ) from None
        return data


class CodeForm(Throttleable, forms.Form):
    """A current second-factor code: a TOTP code or a backup code, checked against `user`."""

    code = forms.CharField(
        label="Code from your authenticator app, or a backup code",
        max_length=32,
        widget=CODE_WIDGET,
    )

    def __init__(self, *args, user: User, request: HttpRequest | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.request = request
        self.device: Device | None = None

    def clean_code(self) -> str:
        code = self.cleaned_data["code"]
        try:
            self.device = verify_code(user=self.user, code=code, request=self.request)
        except CodeRefused as exc:
            raise self.code_refused(exc) from None
        if self.device is None:
            raise forms.ValidationError(WRONG_CODE, code="invalid_code")
        return code


class ConfirmDeviceForm(Throttleable, forms.Form):
    """The first code from a new authenticator, which confirms it."""

    code = forms.CharField(label="6-digit code shown by the app", max_length=16, widget=TOTP_WIDGET)

    def __init__(self, *args, device: SealedTOTPDevice, request: HttpRequest | None = None, **kw):
        super().__init__(*args, **kw)
        self.device = device
        self.request = request

    def clean_code(self) -> str:
        code = self.cleaned_data["code"]
        try:
            confirmed = services.confirm_enrolment(
                device=self.device, code=code, request=self.request
            )
        except CodeRefused as exc:
            raise self.code_refused(exc) from None
        if not confirmed:
            raise forms.ValidationError(WRONG_CODE, code="invalid_code")
        return code


class EnrolmentForm(forms.Form):
    """The first code from a new authenticator, whose key is not a device yet: a right code makes
    it one, confirmed (`form.device`). Not throttled: whoever sees this form sees the key."""

    code = forms.CharField(label="6-digit code shown by the app", max_length=16, widget=TOTP_WIDGET)

    def __init__(self, *args, device: SealedTOTPDevice, request: HttpRequest | None = None, **kw):
        super().__init__(*args, **kw)
        self.pending = device
        self.request = request
        self.device: SealedTOTPDevice | None = None

    def clean_code(self) -> str:
        code = self.cleaned_data["code"]
        self.device = services.finish_enrolment(
            device=self.pending, code=code, request=self.request
        )
        if self.device is None:
            raise forms.ValidationError(WRONG_CODE, code="invalid_code")
        return code


class AdminLoginForm(Throttleable, AdminAuthenticationForm):
    """The admin's login: password and a second-factor code in one form.

    Passwords and codes are checked as on the login pages (same throttling, same single-use
    codes; a throttled check sets `retry_after`, and the site answers 429). The device that
    accepted the code is put on `user.otp_device`, which django-otp's `user_logged_in` handler
    stores in the session: the session is then verified.
    """

    otp_token = forms.CharField(
        label="Code from your authenticator app, or a backup code",
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autocapitalize": "off"}),
    )

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "no_device": (
            "The admin needs a second factor. Log in at /account/login/ and add an "
            "authenticator app first."
        ),
        "code_required": "Enter the code from your authenticator app, or a backup code.",
        "invalid_code": WRONG_CODE,
    }

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if not (username and password):
            return self.cleaned_data
        try:
            user = services.authenticate_password(
                request=self.request, username=username, password=password, login_via="admin"
            )
        except services.LoginThrottled as exc:
            raise self.refuse(exc.retry_after) from None
        except services.InvalidCredentials:
            raise self.get_invalid_login_error() from None
        self.confirm_login_allowed(user)  # active staff only
        user.otp_device = self._checked_device(user)
        self.user_cache = user
        return self.cleaned_data

    def _checked_device(self, user: User) -> Device:
        if not selectors.has_second_factor(user=user):
            raise forms.ValidationError(self.error_messages["no_device"], code="no_device")
        code = self.cleaned_data.get("otp_token")
        if not code:
            raise forms.ValidationError(self.error_messages["code_required"], code="code_required")
        try:
            device = verify_code(user=user, code=code, request=self.request)
        except CodeRefused as exc:
            raise self.code_refused(exc) from None
        if device is None:
            raise forms.ValidationError(self.error_messages["invalid_code"], code="invalid_code")
        return device


class ReauthenticateForm(Throttleable, forms.Form):
    """ "Confirm it's you": the password, or a current code (authenticator or backup code).

    A valid form is a checked one: the session's re-authentication window has started again.
    """

    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )
    code = forms.CharField(
        label="Or a code from your authenticator app, or a backup code",
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autocapitalize": "off"}),
    )

    def __init__(self, *args, request: HttpRequest, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request
        if not selectors.has_code_factor(user=request.user):
            del self.fields["code"]

    def clean(self):
        data = super().clean()
        password, code = data.get("password"), data.get("code")
        if not password and not code:
            raise forms.ValidationError("Type your password or a code.", code="required")
        try:
            confirmed = reauth.reauthenticate(
                user=self.request.user, password=password, code=code, request=self.request
            )
        except services.LoginThrottled as exc:
            raise self.refuse(exc.retry_after) from None
        except CodeRefused as exc:
            self.add_error("code", self.code_refused(exc))
            return data
        if not confirmed:
            field = "code" if code else "password"
            message = WRONG_CODE if code else "That password is not right."
            self.add_error(field, forms.ValidationError(message, code="invalid"))
        return data
