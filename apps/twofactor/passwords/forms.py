"""Forms of the password pages: Django's, with the current password checked under the login
limits and new passwords saved by `services.py`."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import PasswordChangeForm, PasswordResetForm, SetPasswordForm
from django.http import HttpRequest

from apps.accounts.models import User

from .. import services as twofactor_services
from ..forms import Throttleable
from . import limits, services


class ChangePasswordForm(Throttleable, PasswordChangeForm):
    """Django's password change (current password, new one twice, AUTH_PASSWORD_VALIDATORS).

    The current password is checked as a login's is (`authenticate_password`), so a session
    left open cannot be used to guess it faster than the login page allows.
    """

    def __init__(self, user: User, *args, request: HttpRequest, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.request = request

    def clean_old_password(self) -> str:
        old_password = self.cleaned_data["old_password"]
        try:
            twofactor_services.authenticate_password(
                request=self.request, username=self.user.get_username(), password=old_password
            )
        except twofactor_services.LoginThrottled as exc:
            raise self.refuse(exc.retry_after) from None
        except twofactor_services.InvalidCredentials:
            raise forms.ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            ) from None
        return old_password

    def save(self, commit: bool = True) -> User:
        services.change_password(
            user=self.user, password=self.cleaned_data["new_password1"], request=self.request
        )
        return self.user


class AskForResetForm(PasswordResetForm):
    """Django's "email me a link", sending at most PASSWORD_RESET_LIMIT mails to one address per
    window (past it, nothing is sent and the page answers the same)."""

    def get_users(self, email: str):
        if not limits.may_mail(email):
            return iter(())
        return super().get_users(email)


class ResetPasswordForm(SetPasswordForm):
    """Django's "set a new password" of a reset link, saved by `services.reset_password`."""

    def __init__(self, user: User, *args, request: HttpRequest, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.request = request

    def save(self, commit: bool = True) -> User:
        services.reset_password(
            user=self.user, password=self.cleaned_data["new_password1"], request=self.request
        )
        return self.user
