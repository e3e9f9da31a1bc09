"""Baseline for the otp scenario: `POST /api/v1/otp/verify` with no framework.

The same durable work as the project, in the same statements: one join for the token, its person,
their second-factor lock and their confirmed TOTP devices; each device's key unsealed with the
same Fernet keys (OTP_ENCRYPTION_KEYS) and the code checked with pyotp within ±1 step; then one
conditional UPDATE that accepts it and marks the token verified (and renews its
re-authentication window) in the same statement, or one that counts a failure and one for the
account's count.
psycopg2 in autocommit on one persistent connection per worker, as Django's persistent
connections are. django-otp's throttling rule (factor 1) gates the check.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from datetime import UTC, datetime

import psycopg2
import pyotp
from cryptography.fernet import Fernet, MultiFernet

SQL_READ = """
SELECT t.id, t.user_id, t.digest, t.key_prefix, t.created_at, t.expires_at, t.verified_at,
       t.reauthenticated_at,
       u.id, u.username, u.is_active, u.is_staff, u.is_superuser,
       l.id, l.user_id, l.consecutive_failures, l.locked_at,
       d.id, d.user_id, d.name, d.confirmed,
       d.throttling_failure_timestamp, d.throttling_failure_count, d.created_at, d.last_used_at,
       d.sealed_key, d.step, d.t0, d.digits, d.tolerance, d.drift, d.last_t
  FROM accounts_usertoken t
  JOIN accounts_user u ON u.id = t.user_id
  LEFT JOIN twofactor_secondfactorlock l ON l.user_id = t.user_id
  LEFT JOIN twofactor_sealedtotpdevice d ON d.user_id = t.user_id AND d.confirmed
 WHERE t.digest = %s AND t.expires_at > %s AND u.is_active
 ORDER BY d.id
"""
SQL_ACCEPT_AND_MARK = """
WITH accepted AS (
    UPDATE twofactor_sealedtotpdevice
       SET last_t = %s, drift = %s, last_used_at = %s,
           throttling_failure_count = 0, throttling_failure_timestamp = NULL
     WHERE id = %s AND last_t < %s
    RETURNING id
), marked AS (
    UPDATE accounts_usertoken
       SET verified_at = COALESCE(verified_at, %s), reauthenticated_at = %s
     WHERE id = %s AND EXISTS (SELECT 1 FROM accepted)
)
SELECT count(*) FROM accepted
"""
SQL_COUNT_FAILURE = """
UPDATE twofactor_sealedtotpdevice
   SET throttling_failure_count = throttling_failure_count + 1,
       throttling_failure_timestamp = %s
 WHERE id = ANY(%s)
"""
SQL_COUNT_ACCOUNT_FAILURE = """
INSERT INTO twofactor_secondfactorlock (user_id, consecutive_failures) VALUES (%s, 1)
ON CONFLICT (user_id) DO UPDATE
   SET consecutive_failures = twofactor_secondfactorlock.consecutive_failures + 1
"""
THROTTLE_FACTOR = 1
DEVICES = 17  # the read's first device column
FERNET = MultiFernet([Fernet(key) for key in os.environ["OTP_ENCRYPTION_KEYS"].split(",")])

_connection = None


def connection():
    """One connection per worker process, opened after gunicorn forked it."""
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg2.connect(os.environ["DATABASE_URL"])
        _connection.autocommit = True
    return _connection


def answer(start_response, status: str, body: dict, content_type="application/json"):
    data = json.dumps(body, separators=(",", ":")).encode()
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(data)))])
    return [data]


def problem(start_response, status: int, reason: str, headers=()):
    data = json.dumps({"type": "about:blank", "title": reason, "status": status}).encode()
    start_response(
        f"{status} {reason}",
        [
            ("Content-Type", "application/problem+json"),
            ("Content-Length", str(len(data))),
            *headers,
        ],
    )
    return [data]


def throttled(device, now: datetime) -> bool:
    failures, last_failure = device[5], device[4]
    if failures == 0 or last_failure is None:
        return False
    return (now - last_failure).total_seconds() < THROTTLE_FACTOR * 2 ** (failures - 1)


def match(devices, code: str):
    """(device id, step, drift) of the device that accepts `code`, or None."""
    now = time.time()
    for device in devices:
        device_id, sealed_key, step, t0, digits, tolerance, drift, last_t = (
            device[0],
            *device[8:],
        )
        if len(code) != digits:
            continue
        key = FERNET.decrypt(sealed_key.encode("ascii"))
        totp = pyotp.TOTP(base64.b32encode(key), digits=digits, interval=step)
        current = int(now - t0) // step + drift
        for offset in range(-tolerance, tolerance + 1):
            t = current + offset
            if t > last_t and totp.generate_otp(t) == code:
                return device_id, t, drift + offset
    return None


def application(environ, start_response):
    if environ["PATH_INFO"] != "/api/v1/otp/verify" or environ["REQUEST_METHOD"] != "POST":
        return problem(start_response, 404, "Not Found")
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    if not authorization.startswith("Bearer "):
        return problem(start_response, 401, "Unauthorized", [("WWW-Authenticate", "Bearer")])
    length = int(environ.get("CONTENT_LENGTH") or 0)
    code = str(json.loads(environ["wsgi.input"].read(length))["token"]).strip()
    digest = hashlib.sha256(authorization[7:].encode()).hexdigest()
    now = datetime.now(UTC)
    with connection().cursor() as cursor:
        cursor.execute(SQL_READ, (digest, now))
        rows = cursor.fetchall()
        if not rows:
            return problem(start_response, 401, "Unauthorized", [("WWW-Authenticate", "Bearer")])
        token_id, user_id, locked_at = rows[0][0], rows[0][1], rows[0][16]
        if locked_at is not None:
            return problem(start_response, 403, "Forbidden")
        devices = [row[DEVICES:] for row in rows if row[DEVICES] is not None]
        allowed = [device for device in devices if not throttled(device, now)]
        if devices and not allowed:
            return problem(start_response, 429, "Too Many Requests", [("Retry-After", "1")])
        found = match(allowed, code) if code.isdigit() else None
        if found is not None:
            device_id, t, drift = found
            cursor.execute(SQL_ACCEPT_AND_MARK, (t, drift, now, device_id, t, now, now, token_id))
            if cursor.fetchone()[0] == 1:
                return answer(start_response, "200 OK", {"status": True})
            allowed = [device for device in allowed if device[0] == device_id]
        if allowed:
            cursor.execute(SQL_COUNT_FAILURE, (now, [device[0] for device in allowed]))
            cursor.execute(SQL_COUNT_ACCOUNT_FAILURE, (user_id,))
    return answer(start_response, "200 OK", {"status": False})
