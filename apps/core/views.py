"""Health probes, metrics, and the error pages for views that are not DRF's."""

from __future__ import annotations

import hmac
import logging
import sys
from collections.abc import Callable

from django.conf import settings
from django.core.cache import caches
from django.db import connections
from django.http import Http404, HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from . import database
from . import metrics as metrics_registry
from .json import json_response
from .problems import (
    PROBLEM_CONTENT_TYPE,
    problem,
    problem_for_exception,
    problem_response,
    server_error,
)

logger = logging.getLogger(__name__)


@never_cache
@require_safe
def live(request: HttpRequest) -> HttpResponse:
    """The process is up and answering. Checks nothing else, so a slow database never kills it."""
    return json_response({"status": "ok"})


def _check_database(alias: str) -> None:
    connection = connections[alias]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        connection.close()  # do not hand a broken connection to the next request
        raise


def _check_cache(alias: str) -> None:
    cache = caches[alias]
    cache.set("health:ready", "1", timeout=10)
    if cache.get("health:ready") != "1":
        raise RuntimeError("a value written to the cache could not be read back")


def _outcome(name: str, check: Callable[[str], None], alias: str) -> str:
    """ "ok", or "unavailable" (logged) when the check raised."""
    try:
        check(alias)
    except Exception as exc:
        logger.warning("Readiness check %s failed: %s", name, exc.__class__.__name__)
        return "unavailable"
    return "ok"


@never_cache
@require_safe
def ready(request: HttpRequest) -> HttpResponse:
    """503 only when a database does not answer: nothing can be served without one. A cache
    that is down is reported (status "degraded") but never makes the pod unready, since every
    path works without Redis and taking every pod out of service for it would stop them all."""
    # One deadline for every database, within the probe's own timeout: a silent database makes
    # the pod unready rather than the probe time out (several on one frozen server, at once).
    with database.deadline(settings.HEALTH_DB_TIMEOUT):
        databases = {
            f"database:{alias}": _outcome(f"database:{alias}", _check_database, alias)
            for alias in settings.DATABASES
        }
    cache_checks = {
        f"cache:{alias}": _outcome(f"cache:{alias}", _check_cache, alias)
        for alias in settings.CACHES
    }
    checks = {**databases, **cache_checks}
    failed = [name for name, outcome in databases.items() if outcome != "ok"]
    if failed:
        return problem(503, detail=f"Not ready: {', '.join(failed)} unavailable.", checks=checks)
    degraded = any(outcome != "ok" for outcome in cache_checks.values())
    return json_response({"status": "degraded" if degraded else "ok", "checks": checks})


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' scrape: the metrics of every worker, only for `Bearer <METRICS_TOKEN>`, and
    only on METRICS_PORT when it is set (the listener the public proxies never reach).

    Anything else is a 404, as when METRICS_TOKEN is unset: the endpoint does not tell a
    stranger it exists. The token is compared in constant time. SERVER_PORT is the port of the
    socket the request came in on (gunicorn sets it from the listener, not from a header).
    """
    token = settings.METRICS_TOKEN
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    if (
        not token
        or (settings.METRICS_PORT and request.META.get("SERVER_PORT") != str(settings.METRICS_PORT))
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(credential.strip().encode(), token.encode())
    ):
        raise Http404()
    return HttpResponse(metrics_registry.exposition(), content_type=metrics_registry.CONTENT_TYPE)


# --- Error handlers for non-DRF views (config.urls handler400/403/404/500, CSRF_FAILURE_VIEW) ---


def _wants_html(request: HttpRequest) -> bool:
    """A browser on a page gets an HTML page; API paths answer problem+json to everyone, browsers
    included, as their clients parse errors whatever they asked for."""
    if request.path_info.startswith(tuple(settings.API_PATH_PREFIXES)):
        return False
    preferred = request.get_preferred_type([PROBLEM_CONTENT_TYPE, "application/json", "text/html"])
    return preferred == "text/html"


def _error(request: HttpRequest, status: int, detail: str) -> HttpResponse:
    if _wants_html(request):
        return _error_page(request, status, detail)
    return problem(status, detail=detail)


def _error_page(
    request: HttpRequest, status: int, detail: str | None, headers: dict[str, str] | None = None
) -> HttpResponse:
    """The HTML error page, rendered without the context processors: they may read the session
    or the user, and an error page must not need the database (it may be why there is one)."""
    content = render_to_string(
        "error.html", {"status": status, "detail": detail, "request": request}
    )
    response = HttpResponse(content, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error(request, 400, "The request could not be understood.")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error(request, 403, "You are not allowed to do this.")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Django's CSRF refusal as the project's 403 (its own page has inline style, which the CSP
    refuses)."""
    return _error(request, 403, "The form was too old or came from elsewhere: reload the page.")


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error(request, 404, "There is nothing at this address.")


def server_error_page(request: HttpRequest) -> HttpResponse:
    """An uncaught exception: a known problem's status (the database unavailable is a 503 with
    `Retry-After`, logged once by the mapping), else a 500, which Django logs with its traceback.
    """
    exc = sys.exception()  # the exception Django is handling while it calls this handler
    document = problem_for_exception(exc) if exc is not None else None
    if document is None or document.status < 500:
        if _wants_html(request):
            return _error_page(request, 500, None)
        return server_error()
    if _wants_html(request):
        response = _error_page(request, document.status, document.detail, document.headers)
    else:
        response = problem_response(document)
    response._has_been_logged = True  # the mapping logged it, without a traceback to repeat
    return response
