"""TOTP verify: `POST /api/v1/otp/verify` against a pyotp + psycopg2 WSGI app doing the same work.

Measuring real verifications takes some care: a device accepts a code once, and only codes of a
later 30-second step after that, while wrong or replayed codes throttle it (429). So every request
carries a fresh, valid code: each side gets its own pool of people, each with a user token and a
confirmed TOTP device (standard: 30 s, 6 digits, ±1 step), and the wrk script walks the pool one
device after the other, sending the code of the current step. Its position is kept in a file
between wrk runs, so no device is used twice until the pool wraps, and a pool of
BENCH_OTP_DEVICES (default 40,000) lasts longer than the default run at a few thousand requests a
second; were it to wrap within 30 s, the replays would be refused, and counted as errors.
The script also reads every answer and counts `{"status": false}` as an error: only accepted
codes count. As each token is used once, every measured request is a token's first verification:
one join, the sealed key unsealed (Fernet), then one conditional UPDATE that accepts the code and
marks the token verified in the same statement, on both sides.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from pathlib import Path

from bench.harness import Scenario, Target

POOL = int(os.environ.get("BENCH_OTP_DEVICES", "40000"))
STEPS = 12  # codes precomputed for 12 steps (6 minutes) from the moment the pool is made
USERNAME_PREFIX = "bench-otp-"
WORKDIR = Path(tempfile.gettempdir()) / "dbapi-bench-otp"

LUA = r"""
-- POST /api/v1/otp/verify with a fresh, valid code every time (see bench/scenarios/otp.py).
local data_path, state_path = "%(data)s", "%(state)s"
local threads = {}
tokens, codes, first_step, size, cursor, rejected = {}, {}, 0, 0, 0, 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local data = assert(io.open(data_path))
  first_step = data:read("*n")
  data:read("*l")
  for line in data:lines() do
    size = size + 1
    local fields = {}
    for field in line:gmatch("%%S+") do fields[#fields + 1] = field end
    tokens[size] = "Bearer " .. fields[1]
    codes[size] = fields
  end
  data:close()
  local state = io.open(state_path)
  if state then
    cursor = state:read("*n") or 0
    state:close()
  end
end

function request()
  cursor = cursor + 1
  local device = (cursor - 1) %% size + 1
  local step = math.floor(os.time() / 30) - first_step
  local code = codes[device][step + 2] or "000000"  -- past the precomputed steps: refused
  return wrk.format("POST", "/api/v1/otp/verify",
    {["Authorization"] = tokens[device], ["Content-Type"] = "application/json"},
    '{"token":"' .. code .. '"}')
end

function response(status, headers, body)
  if status == 200 and not body:find('"status":true', 1, true) then
    rejected = rejected + 1
  end
end

function done(summary, latency, requests)
  local out = assert(io.open(state_path, "w"))
  out:write(tostring(threads[1]:get("cursor")))
  out:close()
  io.write(string.format("Rejected answers: %%d\n", threads[1]:get("rejected")))
end
"""


def make_pool(side: str, *, size: int) -> Path:
    """`size` people with a token and a confirmed device; their codes, step by step, in a file
    for the wrk script. Returns the file."""
    from datetime import timedelta

    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone
    from django_otp.oath import hotp

    from apps.accounts.credentials import secret_digest
    from apps.accounts.models import User, UserToken
    from apps.twofactor.models import SealedTOTPDevice
    from apps.twofactor.sealing import TOTP_KEY_BYTES, seal

    prefix = f"{USERNAME_PREFIX}{side}-"
    expires = timezone.now() + timedelta(days=1)
    no_password = make_password(None)  # unusable: the pool only ever uses its tokens
    with transaction.atomic():
        users = User.objects.bulk_create(
            (User(username=f"{prefix}{n:06d}", password=no_password) for n in range(size)),
            batch_size=5000,
        )
        keys = [secrets.token_urlsafe(32) for _ in users]
        UserToken.objects.bulk_create(
            (
                UserToken(
                    user=user, digest=secret_digest(key), key_prefix=key[:8], expires_at=expires
                )
                for user, key in zip(users, keys, strict=True)
            ),
            batch_size=5000,
        )
        totp_keys = [secrets.token_bytes(TOTP_KEY_BYTES) for _ in users]
        SealedTOTPDevice.objects.bulk_create(
            (
                SealedTOTPDevice(user=user, name="bench", sealed_key=seal(key), confirmed=True)
                for user, key in zip(users, totp_keys, strict=True)
            ),
            batch_size=5000,
        )
    first_step = int(time.time()) // 30
    path = WORKDIR / f"{side}.txt"
    with path.open("w") as out:
        out.write(f"{first_step}\n")
        for key, secret in zip(keys, totp_keys, strict=True):
            codes = (f"{hotp(secret, first_step + n):06d}" for n in range(STEPS))
            out.write(f"{key} {' '.join(codes)}\n")
    return path


def remove_pools() -> None:
    """Forget the pools of earlier runs (their devices have used up their codes)."""
    from django.db import connection

    pattern = USERNAME_PREFIX + "%"
    with connection.cursor() as cursor:
        for sql in (
            "DELETE FROM twofactor_sealedtotpdevice WHERE user_id IN "
            "(SELECT id FROM accounts_user WHERE username LIKE %s)",
            "DELETE FROM twofactor_secondfactorlock WHERE user_id IN "
            "(SELECT id FROM accounts_user WHERE username LIKE %s)",
            "DELETE FROM accounts_usertoken WHERE user_id IN "
            "(SELECT id FROM accounts_user WHERE username LIKE %s)",
            "DELETE FROM accounts_user WHERE username LIKE %s",
        ):
            cursor.execute(sql, [pattern])


def prepare(scenario: Scenario) -> None:
    WORKDIR.mkdir(exist_ok=True)
    remove_pools()
    started = time.monotonic()
    for side, target in (("django", scenario.django), ("baseline", scenario.baseline)):
        data = make_pool(side, size=POOL)
        state = WORKDIR / f"{side}.cursor"
        state.unlink(missing_ok=True)
        target.lua = LUA % {"data": data, "state": state}
    settle()
    print(f"  {POOL} people, tokens and devices per side in {time.monotonic() - started:.0f} s")


def settle() -> None:
    """Vacuum and analyze the new rows now, so neither side pays for it during its runs (a first
    read of fresh rows writes their hint bits; autovacuum would wake up mid-measurement)."""
    from django.db import connection

    with connection.cursor() as cursor:
        tables = ("accounts_user", "accounts_usertoken", "twofactor_sealedtotpdevice")
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(table)}")


SCENARIO = Scenario(
    name="otp",
    description="POST /api/v1/otp/verify (token + devices join, unseal, conditional UPDATE) vs "
    "pyotp WSGI",
    django=Target(app="config.wsgi", path="/api/v1/otp/verify", method="POST"),
    baseline=Target(
        app="bench.baselines.otp:application", path="/api/v1/otp/verify", method="POST"
    ),
    target_ratio=0.8,
    prepare=prepare,
)
