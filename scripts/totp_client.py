"""An authenticator app for the terminal: print the current TOTP code, and each new one as it
comes, to try an enrolment by hand without a phone.

    .venv/bin/python scripts/totp_client.py 'otpauth://totp/dbapi:alice?secret=…&issuer=dbapi'
    .venv/bin/python scripts/totp_client.py 'ABCD EFGH IJKL MNOP QRST UVWX YZ23 4567'
    .venv/bin/python scripts/totp_client.py --once SECRET_OR_URI    # one code, then exit

Takes the provisioning URI of the enrolment page or API (or the base32 key it shows for typing
by hand). The codes come from django-otp's TOTP, the server's own maths.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import sys
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from django_otp.oath import TOTP


@dataclass(frozen=True)
class Account:
    key: bytes
    label: str = ""
    digits: int = 6
    period: int = 30


def parse_account(secret_or_uri: str) -> Account:
    """An otpauth://totp/… URI, or a bare base32 key (spaces and lower case allowed)."""
    text = secret_or_uri.strip()
    if not text.lower().startswith("otpauth://"):
        return Account(key=decode_secret(text))
    uri = urlsplit(text)
    if uri.netloc.lower() != "totp":
        raise ValueError(f"not a TOTP URI (otpauth://{uri.netloc}/…)")
    query = {name: values[0] for name, values in parse_qs(uri.query).items()}
    if query.get("algorithm", "SHA1").upper() != "SHA1":
        raise ValueError(f"only SHA1 codes are supported, not {query['algorithm']}")
    if "secret" not in query:
        raise ValueError("the URI has no secret")
    return Account(
        key=decode_secret(query["secret"]),
        label=unquote(uri.path.lstrip("/")),
        digits=int(query.get("digits", 6)),
        period=int(query.get("period", 30)),
    )


def decode_secret(secret: str) -> bytes:
    compact = "".join(secret.split()).upper()
    try:
        return base64.b32decode(compact + "=" * (-len(compact) % 8))
    except (binascii.Error, ValueError):
        raise ValueError("the secret is not base32") from None


def current_code(account: Account, *, at: float | None = None) -> tuple[str, int]:
    """The code at `at` (now by default) and the seconds it stays valid."""
    moment = time.time() if at is None else at
    totp = TOTP(account.key, step=account.period, digits=account.digits)
    totp.time = moment
    remaining = account.period - int(moment) % account.period
    return f"{totp.token():0{account.digits}d}", remaining


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("secret_or_uri", help="otpauth://totp/… URI or base32 key")
    parser.add_argument("--once", action="store_true", help="print the current code and exit")
    args = parser.parse_args(argv)
    try:
        account = parse_account(args.secret_or_uri)
    except ValueError as exc:
        parser.error(str(exc))
    if account.label:
        print(account.label, flush=True)
    last = None
    try:
        while True:
            code, remaining = current_code(account)
            if code != last:
                print(f"{code}  (valid {remaining} s more)", flush=True)
                last = code
            if args.once:
                return 0
            time.sleep(min(1.0, remaining))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
