"""The statements on the TOTP verify path, written out: one read, one conditional write.

The ORM would build the same statements on every request; written once here they are prepared
once per connection (see prepared.py), and the conditional UPDATE, which is the whole replay
protection, is in plain sight. Values are always parameters; table and column names are Django's
for these models.
"""

from .prepared import PreparedStatement

# The user token, its person and the person's confirmed TOTP devices, in one round trip.
# One row per device; the device columns are NULL when the person has none.
TOKEN_COLUMNS = ("id", "user_id", "expires_at", "verified_at")
USER_COLUMNS = ("id", "username", "is_active")
DEVICE_COLUMNS = (
    "id",
    "user_id",
    "name",
    "confirmed",
    "throttling_failure_timestamp",
    "throttling_failure_count",
    "key",
    "step",
    "t0",
    "digits",
    "tolerance",
    "drift",
    "last_t",
)
SQL_BEARER_WITH_TOTP_DEVICES = """
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

# Accept a TOTP code at time step t: succeeds (one row) only when no code at step t or later was
# accepted before, so of two requests racing with the same code exactly one wins. It also resets
# the failures of this device, and of no other.
SQL_ACCEPT_TOTP_STEP = """
UPDATE otp_totp_totpdevice
   SET last_t = %s, drift = %s, last_used_at = %s,
       throttling_failure_count = 0, throttling_failure_timestamp = NULL
 WHERE id = %s AND last_t < %s
"""

# The same, and in the same statement mark the user token the code came with as verified
# (PostgreSQL: a data-modifying WITH). Returns the number of devices that accepted (0 or 1).
SQL_ACCEPT_TOTP_STEP_AND_MARK_VERIFIED = """
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

BEARER_WITH_TOTP_DEVICES = PreparedStatement(
    "twofactor_bearer_with_totp_devices", SQL_BEARER_WITH_TOTP_DEVICES
)
ACCEPT_TOTP_STEP = PreparedStatement("twofactor_accept_totp_step", SQL_ACCEPT_TOTP_STEP)
# PostgreSQL only: the data-modifying WITH has no SQLite equivalent.
ACCEPT_TOTP_STEP_AND_MARK_VERIFIED = PreparedStatement(
    "twofactor_accept_totp_step_and_mark_verified", SQL_ACCEPT_TOTP_STEP_AND_MARK_VERIFIED
)
