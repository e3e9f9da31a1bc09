"""Named SQL of the action framework: the statements of Idempotency-Keys and timeouts."""

# Within the call's transaction, on PostgreSQL: take the key's transaction-scoped advisory lock
# without waiting (false while another call with the key is running) and read the answer kept
# for the key, in one round trip. The lock ends with the transaction, so it never outlives it.
SQL_CLAIM_KEY_LOCKED = """
SELECT pg_try_advisory_xact_lock(%s), r.fingerprint, r.status, r.body, r.expires_at
  FROM (SELECT 1) AS one
  LEFT JOIN actions_idempotencyrecord r ON r.client_id = %s AND r.key = %s
"""

# Elsewhere (SQLite, the embedded default): the answer kept for the key; SQLite's one writer at
# a time serialises the calls, and the unique key refuses a second answer.
SQL_CLAIM_KEY = """
SELECT TRUE, fingerprint, status, body, expires_at
  FROM actions_idempotencyrecord
 WHERE client_id = %s AND key = %s
"""

# Keep the call's answer, replacing an expired one for the same key; RETURNING nothing means a
# live answer for the key exists already (a call that raced this one without the lock).
SQL_STORE_ANSWER = """
INSERT INTO actions_idempotencyrecord
       (client_id, key, fingerprint, status, body, created_at, expires_at)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (client_id, key) DO UPDATE
   SET fingerprint = excluded.fingerprint, status = excluded.status, body = excluded.body,
       created_at = excluded.created_at, expires_at = excluded.expires_at
 WHERE actions_idempotencyrecord.expires_at <= excluded.created_at
RETURNING id
"""

SQL_PRUNE_ANSWERS = "DELETE FROM actions_idempotencyrecord WHERE expires_at <= %s"

# PostgreSQL only: the statements of the rest of the transaction may run this long (ms), and
# wait this long for a lock (ms): a lock that never comes is a 503 within DB_TIMEOUT.
SQL_STATEMENT_TIMEOUT = (
    "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)"
)
