"""Forms of the passkey pages. The browser's WebAuthn answer arrives as JSON in a hidden
`passkey` field, put there by static/js/passkeys.js; as with the code forms, a valid form is a
checked one (`form.passkey`)."""

from __future__ import annotations

import json

from django import forms
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import User

from ..forms import CodeForm, Throttleable
from ..models import Passkey
from ..verification import SecondFactorLocked
from .challenges import session_binding
from .errors import PasskeyRefused, PasskeyThrottled
from .selectors import has_passkey

ANSWER_MAX_LENGTH = 32_768  # far above any real answer; a bigger one is refused unread
NAME_WIDGET = forms.TextInput(attrs={"autocomplete": "off", "placeholder": _("e.g. Work laptop")})
NO_ANSWER = _("Your browser sent no passkey. Try again, or use another way to log in.")


class _PasskeyAnswerForm(Throttleable, forms.Form):
    passkey = forms.CharField(
        widget=forms.HiddenInput,
        max_length=ANSWER_MAX_LENGTH,
        error_messages={"required": NO_ANSWER},
    )

    def __init__(self, *args, binding: str, request: HttpRequest | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.binding = binding
        self.request = request  # the request its security events are recorded in
        self.passkey: Passkey | None = None

    def answer(self) -> dict:
        try:
            answer = json.loads(self.cleaned_data["passkey"])
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise forms.ValidationError(NO_ANSWER, code="invalid")
        return answer

    def refused(self, exc: PasskeyRefused) -> forms.ValidationError:
        return forms.ValidationError(exc.message, code=exc.reason)


class PasskeyForm(_PasskeyAnswerForm):
    """A passkey's assertion: with `user`, as that person's second factor; without, as a
    passwordless sign-in."""

    def __init__(self, *args, binding: str, user: User | None = None, **kwargs):
        super().__init__(*args, binding=binding, **kwargs)
        self.user = user

    @property
    def device(self) -> Passkey | None:
        """The device that accepted, as on the code forms."""
        return self.passkey

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        from . import authentication  # py_webauthn, loaded when a passkey is checked

        try:
            self.passkey = authentication.authenticate_passkey(
                credential=self.answer(),
                binding=self.binding,
                user=self.user,
                request=self.request,
            )
        except PasskeyThrottled as exc:
            raise self.refuse(exc.retry_after) from None
        except PasskeyRefused as exc:
            raise self.refused(exc) from None
        except SecondFactorLocked as exc:
            raise self.code_refused(exc) from None
        return data


class AddPasskeyForm(_PasskeyAnswerForm):
    """A name and the browser's answer to the registration options."""

    name = forms.CharField(
        label=_("Name of the new passkey"), max_length=64, required=False, widget=NAME_WIDGET
    )
    field_order = ["name", "passkey"]

    def __init__(self, *args, binding: str, user: User, **kwargs):
        super().__init__(*args, binding=binding, **kwargs)
        self.user = user

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        from . import registration  # py_webauthn, loaded when a passkey is registered

        try:
            self.passkey = registration.register_passkey(
                user=self.user,
                binding=self.binding,
                credential=self.answer(),
                name=data.get("name", ""),
                request=self.request,
            )
        except PasskeyRefused as exc:
            raise self.refused(exc) from None
        return data


class RenamePasskeyForm(forms.Form):
    name = forms.CharField(label=_("New name"), max_length=64, widget=NAME_WIDGET)


def second_factor_forms(
    request: HttpRequest, *, user: User
) -> tuple[CodeForm, PasskeyForm | None, CodeForm | PasskeyForm]:
    """The two ways to give a second factor on a page, a code and a passkey, the one posted
    bound to the request's data: (code form, passkey form or None, the posted one)."""
    data = request.POST if request.method == "POST" else None
    by_passkey = data is not None and "passkey" in data
    code_form = CodeForm(None if by_passkey else data, user=user, request=request)
    passkey_form = None
    if by_passkey or has_passkey(user=user):
        passkey_form = PasskeyForm(
            data if by_passkey else None,
            binding=session_binding(request.session),
            user=user,
            request=request,
        )
    return code_form, passkey_form, passkey_form if by_passkey else code_form


def form_status(form: forms.Form | None) -> int:
    """429 while throttled, 403 while the person's second factor is locked (a code or a passkey
    alike), 400 for a refused passkey, else 200 (a wrong code re-shows the form, as it always
    did)."""
    if form is None or not form.is_bound:
        return 200
    if isinstance(form, Throttleable) and form.throttled:
        return 429
    if form.errors and _locked(form):
        return 403
    return 400 if isinstance(form, _PasskeyAnswerForm) and form.errors else 200


def _locked(form: forms.Form) -> bool:
    """Whether the form was refused because the second factor is locked (`code_refused`)."""
    return any(
        error.code == "locked" for errors in form.errors.as_data().values() for error in errors
    )
