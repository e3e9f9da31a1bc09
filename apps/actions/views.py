"""`POST /actions/<module>/<action>`, `POST /actions/<module>/` and `POST /actions/batch` for
Django's handler.

The fast path (`wsgi.py`) answers these under gunicorn; these views answer them everywhere else
(runserver, the test client, ACTIONS_FAST_PATH=false) with the same code (`http.serve`).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from . import http


@csrf_exempt  # called by services with a bearer key, never with a browser's cookies
def call(request: HttpRequest, module: str, action: str) -> HttpResponse:
    """Run one action with the JSON object in the body; answer its result as JSON."""
    return http.serve(request.META, module=module, action=action).as_response()


@csrf_exempt
def ping(request: HttpRequest, module: str) -> HttpResponse:
    """The module's ping, as in the original: `true` when it exists and the key may call it."""
    return http.serve(request.META, module=module, action="").as_response()


@csrf_exempt
def batch(request: HttpRequest) -> HttpResponse:
    """Several calls in one transaction: all of them, or none."""
    return http.serve_batch(request.META).as_response()
