"""Baseline for the otp scenario: `POST /api/v1/otp/verify` with no framework.

The same durable work as the project, in the same statements: one join for the token, its person
and their confirmed TOTP devices; the code checked with pyotp within ±1 step; then one conditional
UPDATE that accepts it (marking an unverified token verified in the same statement), or one that
counts a failure. psycopg2 in autocommit on one persistent connection per worker, as Django's
persistent connections are. django-otp's throttling rule (factor 1) gates the check.
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

SQL_READ = """
SELECT t.id, t.user_id, t.expires_at, t.verified_at,
       u.id, u.username, u.is_active,
       d.id, d.user_id, d.name, d.confirmed,
       d.throttling_failure_timestamp, d.throttling_failure_count,
       d.key, d.step, d.t0, d.digits, d.tolerance, d.drift, d.last_t
  FROM accounts_usertoken t
  JOIN accounts_user u ON u.id = t.user_id
  LEFT JOIN otp_totp_totpdevice d ON d.user_id = t.user_id AND d.confirmed
 WHERE t.digest = %s AND t.expires_at > %s AND u.is_active
 ORDER BY d.id
"""
SQL_ACCEPT = """
UPDATE otp_totp_totpdevice
   SET last_t = %s, drift = %s, last_used_at = %s,
       throttling_failure_count = 0, throttling_failure_timestamp = NULL
 WHERE id = %s AND last_t < %s
"""
SQL_ACCEPT_AND_MARK_VERIFIED = """
WITH accepted AS (
    UPDATE otp_totp_totpdevice
       SET last_t = %s, drift = %s, last_used_at = %s,
           throttling_failure_count = 0, throttling_failure_timestamp = NULL
     WHERE id = %s AND last_t < %s
    RETURNING id
), verified AS (
    UPDATE accounts_usertoken SET verified_at = %s
     WHERE id = %s AND verified_at IS NULL AND EXISTS (SELECT 1 FROM accepted)
)
SELECT count(*) FROM accepted
"""
SQL_COUNT_FAILURE = """
UPDATE otp_totp_totpdevice
   SET throttling_failure_count = throttling_failure_count + 1,
       throttling_failure_timestamp = %s
 WHERE id = ANY(%s)
"""
THROTTLE_FACTOR = 1

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
    for device_id, _, _, _, _, _, key, step, t0, digits, tolerance, drift, last_t in devices:
        if len(code) != digits:
            continue
        totp = pyotp.TOTP(base64.b32encode(bytes.fromhex(key)), digits=digits, interval=step)
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
        token_id, verified_at = rows[0][0], rows[0][3]
        devices = [row[7:] for row in rows if row[7] is not None]
        allowed = [device for device in devices if not throttled(device, now)]
        if devices and not allowed:
            return problem(start_response, 429, "Too Many Requests", [("Retry-After", "1")])
        found = match(allowed, code) if code.isdigit() else None
        if found is not None:
            device_id, t, drift = found
            if verified_at is None:
                cursor.execute(
                    SQL_ACCEPT_AND_MARK_VERIFIED, (t, drift, now, device_id, t, now, token_id)
                )
                accepted = cursor.fetchone()[0] == 1
            else:
                cursor.execute(SQL_ACCEPT, (t, drift, now, device_id, t))
                accepted = cursor.rowcount == 1
            if accepted:
                return answer(start_response, "200 OK", {"status": True})
            allowed = [device for device in allowed if device[0] == device_id]
        if allowed:
            cursor.execute(SQL_COUNT_FAILURE, (now, [device[0] for device in allowed]))
    return answer(start_response, "200 OK", {"status": False})
