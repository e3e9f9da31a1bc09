"""Passkeys (WebAuthn): registering them, signing in with them, and the pages and API for both.

The verification itself is py_webauthn's; this package decides which challenge, origin, RP ID,
counter and user-verification rule apply, and what an accepted passkey does (log in, verify a
token).
"""
