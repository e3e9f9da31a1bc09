"""WSGI entry point for gunicorn: `gunicorn config.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Django first: the layers below import the apps' code, which needs the settings and the apps.
django_application = get_wsgi_application()

from django.conf import settings  # noqa: E402

from apps.actions.wsgi import ActionsRoute  # noqa: E402
from apps.core.wsgi import ChunkedBodies, FastPaths, api_paths  # noqa: E402
from apps.hits.wsgi import HitsRoute  # noqa: E402
from apps.twofactor.wsgi import VerifyRoute  # noqa: E402

# GET /, action calls and code checks are answered in front of Django's handler (apps/hits/wsgi.py,
# apps/actions/wsgi.py, apps/twofactor/wsgi.py; HITS_FAST_PATH, ACTIONS_FAST_PATH and
# OTP_VERIFY_FAST_PATH set to false turn them off). Other API calls (/api/v1/) go through a
# handler with only the middleware they need (apps/core/wsgi.py).
fast_routes = [
    route
    for route, on in (
        (HitsRoute(), settings.HITS_FAST_PATH),
        (ActionsRoute(), settings.ACTIONS_FAST_PATH),
        (VerifyRoute(), settings.OTP_VERIFY_FAST_PATH),
    )
    if on
]
application = ChunkedBodies(
    FastPaths(api_paths(django_application), fast_routes),
    limits=[("/actions/", settings.ACTIONS_MAX_BODY)],
)
