"""The project's settings for its test suite: config/settings.py with a fast password hasher,
and a Redis database per pytest-xdist worker.

Production's PBKDF2 spends most of a second of CPU on every password it sets or checks, on
purpose; the suite sets and checks thousands. pytest-django selects this module, and the servers
the tests start (gunicorn, grpcserver, manage.py) inherit it through DJANGO_SETTINGS_MODULE.
The tests about hashing itself put the real hasher back (tests/twofactor/test_login_limits.py).
"""

import os
from urllib.parse import urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured

from config.settings import *  # noqa: F403
from config.settings import REDIS_URL, _redis_cache, env

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Under pytest-xdist every worker needs a Redis database of its own, since tests empty theirs
# (cache.clear()). TEST_REDIS_DBS names them, gw0 the first (make test: TEST_REDIS_DBS); each
# worker's PostgreSQL databases get pytest-django's `_gw<N>` suffix. The servers a test starts
# are given this REDIS_URL and no PYTEST_XDIST_WORKER (tests/servers.py project_env).
_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker and REDIS_URL:
    _dbs = env.list("TEST_REDIS_DBS", default=[])
    _index = int(_worker.removeprefix("gw"))
    if _index >= len(_dbs):
        raise ImproperlyConfigured(
            f"pytest-xdist worker {_worker} has no Redis database: TEST_REDIS_DBS={_dbs} names "
            "one per worker (e.g. TEST_REDIS_DBS=1,13,15 for -n 3)."
        )
    REDIS_URL = urlunsplit(urlsplit(REDIS_URL)._replace(path=f"/{_dbs[_index]}"))
    CACHES = {"default": _redis_cache(REDIS_URL)}
