"""The WSGI fast path of action calls (`apps.core.wsgi.FastPaths`).

`POST /actions/<module>/<action>` is the API's busiest call, and the view does all of its work
itself (`http.serve`): Django's handler would add URL resolving, the request signals and the
middleware chain around it, for nothing. Requests Django must refuse or redirect go on to it.
"""

from __future__ import annotations

import re

from apps.core.wsgi import Answer, Environ, FastRoute

from . import http

# The action URLs of apps.actions.urls: a batch, a module's ping, and an action.
ACTION_PATH = re.compile(r"/actions/(?:(?P<batch>batch)|(?P<module>[^/]+)/(?P<action>[^/]*))")


class ActionsRoute(FastRoute):
    name = "actions"
    middleware_setting = "API_MIDDLEWARE"  # action paths are API paths (API_PATH_PREFIXES)

    def match(self, environ: Environ) -> re.Match | None:
        return ACTION_PATH.fullmatch(environ.get("PATH_INFO", ""))

    def view_name(self, match: re.Match) -> str:
        return "actions:call" if match["action"] else "actions:ping"

    def answer(self, environ: Environ, match: re.Match) -> Answer:
        if match["batch"]:
            return http.serve_batch(environ)
        return http.serve(environ, module=match["module"], action=match["action"])
