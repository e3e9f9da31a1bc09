"""The two statements of the verify path written by hand: one read (the user token, its person,
their second-factor lock and their confirmed authenticators) and one write (the code accepted and
the token marked, together).

Built by the ORM on every request, the same read and writes cost the verify path more CPU than
everything else it does (the same-run comparison is in the README's speed section), so they stay
written out here. They are plain statements: nothing is prepared or kept on the connection, so
they run as well through PgBouncer in transaction mode. The column lists are the models' own and
tests/twofactor/test_sql.py fails when a model (or the django-otp mixins under it) gains or loses
a column, so this cannot drift from the schema silently. Values are always parameters.
"""

from __future__ import annotations

TOKEN_COLUMNS = (
    "id",
    "user_id",
    "digest",
    "key_prefix",
    "created_at",
    "expires_at",
    "verified_at",
    "reauthenticated_at",
)
# What the verify path needs of the person: who they are, and whether the policy covers them.
PERSON_COLUMNS = ("id", "username", "is_active", "is_staff", "is_superuser")
LOCK_COLUMNS = ("id", "user_id", "consecutive_failures", "locked_at")
DEVICE_COLUMNS = (
    "id",
    "user_id",
    "name",
    "confirmed",
    "throttling_failure_timestamp",
    "throttling_failure_count",
    "created_at",
    "last_used_at",
    "sealed_key",
    "step",
    "t0",
    "digits",
    "tolerance",
    "drift",
    "last_t",
)

# One row per confirmed device; the device (and lock) columns are NULL when there is none.
SQL_BEARER_WITH_TOTP_DEVICES = """
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

# Accept a TOTP code at time step t: succeeds (one row) only when no code at step t or later was
# accepted before, so of two requests racing with the same code exactly one wins. It resets the
# failures of this device, and of no other. In the same statement (a data-modifying WITH,
# PostgreSQL only) the user token the code came with is marked verified and its
# re-authentication window renewed. Returns the number of devices that accepted (0 or 1).
SQL_ACCEPT_TOTP_STEP_AND_MARK_BEARER = """
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
# The columns each statement writes, for the drift test.
ACCEPT_DEVICE_COLUMNS = (
    "last_t",
    "drift",
    "last_used_at",
    "throttling_failure_count",
    "throttling_failure_timestamp",
)
MARK_TOKEN_COLUMNS = ("verified_at", "reauthenticated_at")
