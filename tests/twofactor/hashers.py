"""Django's production password hasher, counting how many hashes it computed: what the login
limits must spare, shown without a clock."""

from __future__ import annotations

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class CountingPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """PBKDF2 as in production (same algorithm name, so existing hashes verify), counting."""

    computed = 0

    def encode(self, password, salt, iterations=None):
        CountingPBKDF2PasswordHasher.computed += 1
        return super().encode(password, salt, iterations)
