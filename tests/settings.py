"""The project's settings for its test suite: config/settings.py with a fast password hasher.

Production's PBKDF2 spends most of a second of CPU on every password it sets or checks, on
purpose; the suite sets and checks thousands. pytest-django selects this module, and the servers
the tests start (gunicorn, grpcserver, manage.py) inherit it through DJANGO_SETTINGS_MODULE.
The tests about hashing itself put the real hasher back (tests/twofactor/test_login_limits.py).
"""

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
