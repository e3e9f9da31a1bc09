"""WSGI entry point for gunicorn: `gunicorn config.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

from apps.actions.wsgi import actions_fast_path
from apps.core.wsgi import api_paths
from apps.hits.wsgi import hits_fast_path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# GET / and action calls are answered in front of Django's handler (apps/hits/wsgi.py,
# apps/actions/wsgi.py; HITS_FAST_PATH=false and ACTIONS_FAST_PATH=false turn them off). Other
# API calls (/api/v1/) go through a handler with only the middleware they need (apps/core/wsgi.py).
application = hits_fast_path(actions_fast_path(api_paths(get_wsgi_application())))
