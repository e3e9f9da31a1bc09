"""A WSGI fast path for action calls, in front of Django's handler.

`POST /actions/<module>/<action>` is the API's busiest call. The view does all of its work
itself (key, body, validation, transaction, errors as problems); Django's handler would add URL
resolving, the request signals and the middleware chain, about a tenth of a call's CPU. The
fast path (`apps.core.wsgi.FastPath`) calls the same views with what API_MIDDLEWARE and the
handler would have done. Other paths, and requests Django must refuse or redirect, go on.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings

from apps.core.wsgi import Answer, Environ, FastPath

# The action URLs of apps.actions.urls: a module's ping, and an action.
ACTION_PATH = re.compile(r"/actions/(?P<module>[^/]+)/(?P<action>[^/]*)")


def actions_fast_path(application: Callable) -> Callable:
    """Wrap the WSGI application with the fast path, unless ACTIONS_FAST_PATH is off."""
    if not settings.ACTIONS_FAST_PATH:
        return application
    return ActionsFastPath(application)


class ActionsFastPath(FastPath):
    def __init__(self, application: Callable):
        # Here, not at the top: config/wsgi.py imports this module before Django is set up.
        from .views import call, ping

        super().__init__(application, middleware=settings.API_MIDDLEWARE)
        self.call, self.ping = call, ping

    def route(self, environ: Environ) -> re.Match | None:
        return ACTION_PATH.fullmatch(environ.get("PATH_INFO", ""))

    def answer(self, environ: Environ, route: re.Match, *, request_id: str) -> Answer:
        request = self.request(environ, request_id=request_id)
        module, action = route["module"], route["action"]
        response = self.call(request, module, action) if action else self.ping(request, module)
        return self.from_response(request, response)
