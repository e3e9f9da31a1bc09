"""WSGI entry point for gunicorn: `gunicorn config.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

from apps.hits.wsgi import hits_fast_path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# GET / is answered in front of Django's handler (see apps/hits/wsgi.py); HITS_FAST_PATH=false
# sends it through the whole stack.
application = hits_fast_path(get_wsgi_application())
