"""Who may call which mobile API endpoint, by the state of their user token and second factor."""

from __future__ import annotations

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.accounts.models import UserToken

from . import selectors


class SecondFactorVerified(BasePermission):
    """Only a user token verified with a second factor (a TOTP or backup code) passes: else 403."""

    message = "This needs a token verified with a second factor: POST /api/v1/otp/verify first."

    def has_permission(self, request: Request, view) -> bool:
        token = request.auth
        return isinstance(token, UserToken) and token.is_verified


class EnrolmentAllowed(SecondFactorVerified):
    """A token verified with a second factor, or any token of a person with no authenticator yet
    (their first enrolment): a stolen password alone cannot add an authenticator to an account
    that has one."""

    message = "This person has an authenticator: verify a code with this token first."

    def has_permission(self, request: Request, view) -> bool:
        return super().has_permission(request, view) or not selectors.has_second_factor(
            user=request.user
        )
