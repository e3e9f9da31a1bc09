"""The mobile API's own problems, each with the `type` a client tells it apart by."""

from __future__ import annotations

from rest_framework import exceptions, status

from apps.accounts.credentials import BEARER_CHALLENGE
from apps.core.problems import Problem

from .verification import CodeRefused, CodeThrottled

THROTTLED_DETAIL = "Too many wrong attempts."


class WrongCredentials(Problem):
    """401 for a wrong password, the same whether the username exists or not."""

    status_code = status.HTTP_401_UNAUTHORIZED
    default_detail = "That username and password do not match."
    default_code = "invalid_credentials"
    headers = {"WWW-Authenticate": BEARER_CHALLENGE}


class EnrolmentRequired(Problem):
    """TWO_FACTOR_REQUIRED covers this person and they have no second factor: only enrolment
    (an authenticator or a passkey, and the token endpoints) answer until they add one."""

    status_code = status.HTTP_403_FORBIDDEN
    default_detail = (
        "This account needs a second factor first: add an authenticator (POST otp/devices) or "
        "a passkey (POST passkeys/register)."
    )
    default_code = "enrolment_required"
    type_slug = "enrolment-required"


class ReauthenticationRequired(Problem):
    """Changing factors needs the password or a code entered within TWO_FACTOR_REAUTH_SECONDS
    with this token."""

    status_code = status.HTTP_403_FORBIDDEN
    default_detail = (
        "Confirm it is you first: POST auth/reauthenticate with your password or a code."
    )
    default_code = "reauthentication_required"
    type_slug = "reauthentication-required"


class SecondFactorLocked(Problem):
    """Too many failed codes in a row: codes and passkeys (as a second factor) are refused until
    staff unlock the account."""

    status_code = status.HTTP_403_FORBIDDEN
    default_code = "second_factor_locked"
    type_slug = "second-factor-locked"

    def __init__(self, *, backup_codes_allowed: bool):
        super().__init__(
            "Too many wrong codes: codes from authenticators and passkeys are refused until "
            "staff unlock this account"
            + (", or a backup code is used." if backup_codes_allowed else ".")
        )


def code_refused(exc: CodeRefused) -> exceptions.APIException:
    """The answer when no code is checked: 429 with Retry-After while throttled (the same
    whatever was sent, so it tells nothing about it), 403 while the account is locked."""
    if isinstance(exc, CodeThrottled):
        return exceptions.Throttled(wait=exc.retry_after, detail=THROTTLED_DETAIL)
    return SecondFactorLocked(backup_codes_allowed=exc.backup_codes_allowed)
