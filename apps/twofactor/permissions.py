"""Who may call which mobile API endpoint, by the state of their user token and second factor.

They are checked in the order a view lists them, after IsAuthenticated (401 first): the policy
(enrolment-required), then a verified token, then a recent password or code
(reauthentication-required). The typed ones raise their problem, so the client gets its `type`.
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.accounts.models import UserToken

from . import reauth, selectors
from .problems import EnrolmentRequired, ReauthenticationRequired


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


class EnrolledIfRequired(BasePermission):
    """Someone TWO_FACTOR_REQUIRED covers must have a second factor: every endpoint but
    enrolment and the token's own answers them 403 enrolment-required until they do.

    The verify path has read the person's authenticators already (`request.auth.totp_devices`):
    with one, no query is needed.
    """

    def has_permission(self, request: Request, view) -> bool:
        if meets_policy(user=request.user, token=request.auth):
            return True
        raise EnrolmentRequired


class EnrolledIfRequiredWithToken(EnrolledIfRequired):
    """EnrolledIfRequired for the endpoints also open without a token (a passwordless sign-in
    with a passkey): a caller with a token answers to the policy as everywhere else; one
    without is not anyone yet."""

    def has_permission(self, request: Request, view) -> bool:
        return request.auth is None or super().has_permission(request, view)


def meets_policy(*, user, token) -> bool:
    """Whether TWO_FACTOR_REQUIRED lets this person through: it does not cover them, or they
    have a second factor (with the devices read along with the token, no query)."""
    if not selectors.covered_by_policy(user=user):
        return True
    return bool(getattr(token, "totp_devices", None)) or selectors.has_second_factor(user=user)


class RecentlyReauthenticated(BasePermission):
    """The password or a code was entered with this token within TWO_FACTOR_REAUTH_SECONDS."""

    def has_permission(self, request: Request, view) -> bool:
        if isinstance(request.auth, UserToken) and reauth.token_is_recent(request.auth):
            return True
        raise ReauthenticationRequired
