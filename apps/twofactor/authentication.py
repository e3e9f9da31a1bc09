"""The user-token authentication of the TOTP verify path, which reads the devices with the token."""

from __future__ import annotations

from datetime import datetime

from apps.accounts.models import UserToken
from apps.accounts.tokens import UserTokenAuthentication

from . import selectors


class TokenWithTOTPDevicesAuthentication(UserTokenAuthentication):
    """A user token, as `UserTokenAuthentication`, read in the same query as the person's
    confirmed TOTP devices (`request.auth.totp_devices`): verifying a code then needs only the
    write."""

    def find_token(self, *, digest: str, now: datetime) -> UserToken | None:
        return selectors.token_with_totp_devices(digest=digest, now=now)
