"""Passwords without a bypass: changing one (the current password and a recent
re-authentication) and resetting one by email (which never logs in, so the second factor is still
asked for). Either ends what the old password opened: other sessions, API tokens, trusted
browsers."""
