"""`GET /`: count a hit on the `root` counter and show the total, as text or JSON.

The answer is built here for both ways in: this view, behind Django's whole stack, and the WSGI
fast path (`apps.hits.wsgi`), which serves `GET /` under gunicorn.
"""

from __future__ import annotations

import functools

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from apps.core.json import dumps
from apps.core.languages import language_neutral
from apps.core.problems import problem

from .services import ROOT_COUNTER, count_hit

TEXT = "text/plain"
JSON = "application/json"
# Each answer is a new count, so no cache may keep it; and it depends on Accept.
ANSWER_HEADERS = (("Cache-Control", "no-store"), ("Vary", "Accept"))


@csrf_exempt  # so that a POST gets the 405 problem below, not the CSRF failure page
@language_neutral  # `Hits: N` in every language, as the original answered
def root(request: HttpRequest) -> HttpResponse:
    """Only GET counts: a HEAD or a POST must not add a hit."""
    if request.method != "GET":
        return problem(405, detail="Only GET counts a hit.", headers={"Allow": "GET"})
    content_type, body = render_total(
        count_hit(ROOT_COUNTER), media_type=preferred_type(request.META.get("HTTP_ACCEPT"))
    )
    response = HttpResponse(body, content_type=content_type)
    for name, value in ANSWER_HEADERS:
        response[name] = value
    return response


def render_total(total: int, *, media_type: str) -> tuple[str, bytes]:
    """Content type and body: `Hits: N` as the original answered, or `{"hits": N}`."""
    if media_type == JSON:
        return JSON, dumps({"hits": total})
    return f"{TEXT}; charset=utf-8", b"Hits: %d" % total


@functools.lru_cache(maxsize=64)
def preferred_type(accept: str | None) -> str:
    """JSON when the client prefers it to text; text for anything else, as the original did.

    Clients send the same few Accept headers: each is parsed once, by Django's own negotiation.
    """
    request = HttpRequest()
    request.META["HTTP_ACCEPT"] = accept or "*/*"
    return request.get_preferred_type([TEXT, JSON]) or TEXT
