"""Why a passkey answer is refused, one exception per kind, each with the slug its problem
`type` ends in and a sentence for the person."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


class PasskeyRefused(Exception):
    """A registration or assertion that cannot be accepted."""

    reason = "passkey-invalid"
    message = _("That passkey answer could not be verified.")


class PasskeyInvalid(PasskeyRefused):
    """Malformed, a bad signature, or not for this person."""


class PasskeyUnknown(PasskeyRefused):
    reason = "passkey-unknown"
    message = _("That passkey is not registered here.")


class AlreadyRegistered(PasskeyRefused):
    reason = "passkey-already-registered"
    message = _("That passkey is already registered.")


class WrongOrigin(PasskeyRefused):
    reason = "passkey-wrong-origin"
    message = _("That passkey answer was made for another site.")


class WrongRpId(PasskeyRefused):
    reason = "passkey-wrong-rp-id"
    message = _("That passkey belongs to another site.")


class UserVerificationRequired(PasskeyRefused):
    reason = "passkey-user-verification-required"
    message = _(
        "Signing in without a password needs a passkey that checks it is you (a PIN, a "
        "fingerprint, a face). Log in with your password; this passkey works as a second step."
    )


class SignCountNotIncreased(PasskeyRefused):
    reason = "passkey-sign-count"
    message = _(
        "That passkey's counter went back: it may have been copied. It was refused; if this "
        "keeps happening, remove the passkey and add it again."
    )


class PasskeyThrottled(Exception):
    """Too many failed assertions: nothing is checked until `retry_after` seconds have passed."""

    def __init__(self, retry_after: int):
        super().__init__(f"passkey throttled for {retry_after} s")
        self.retry_after = retry_after
