"""An authenticator app for the terminal. It prints the current TOTP code, and each new one as
it comes, so that an enrolment can be tried by hand without a phone.

It takes the provisioning URI that the enrolment page or API shows, or the base32 key shown for
typing by hand. The codes come from django-otp's TOTP, the server's own maths, so it runs with
the project's virtualenv:

    .venv/bin/python scripts/totp_client.py 'otpauth://totp/dbapi:alice?secret=…&issuer=dbapi'
    .venv/bin/python scripts/totp_client.py 'ABCD EFGH IJKL MNOP QRST UVWX YZ23 4567'
    .venv/bin/python scripts/totp_client.py --once SECRET_OR_URI    # one code, then exit
"""

from __future__ import annotations

import argparse
import base64
import binascii
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

try:
    from django_otp.oath import TOTP
except ModuleNotFoundError:  # run by a Python without the project's packages
    TOTP = None

PROJECT_DIR = Path(__file__).resolve().parent.parent


def how_to_run() -> str:
    """How to run the script when this Python lacks django-otp, rather than a traceback."""
    venv_python = PROJECT_DIR / ".venv" / "bin" / "python"
    return (
        f"This Python ({sys.executable}) does not have django-otp, which computes the codes. "
        "Run the script with the project's virtualenv instead; `make install-dev` creates it:\n"
        f"    cd {PROJECT_DIR} && make install-dev\n"
        f"    {venv_python} scripts/totp_client.py SECRET_OR_URI\n"
    )


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
    summary, _, details = __doc__.partition("\n\n")
    parser = argparse.ArgumentParser(
        description=summary,
        epilog=details,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "secret_or_uri",
        help="The provisioning URI (otpauth://totp/…) or the base32 key of the account.",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="Print the current code and exit, instead of printing each new one until Ctrl-C.",
    )
    args = parser.parse_args(argv)
    if TOTP is None:
        parser.exit(1, how_to_run())
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
