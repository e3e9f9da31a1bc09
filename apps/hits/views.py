"""`GET /`: count a hit on the `root` counter and show the total, as text or JSON."""

from __future__ import annotations

import functools

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from apps.core.json import dumps
from apps.core.problems import problem

from .services import ROOT_COUNTER, count_hit

TEXT = "text/plain"
JSON = "application/json"


@csrf_exempt  # so that a POST gets the 405 problem below, not the CSRF failure page
def root(request: HttpRequest) -> HttpResponse:
    """Only GET counts: a HEAD or a POST must not add a hit."""
    if request.method != "GET":
        return problem(405, detail="Only GET counts a hit.", headers={"Allow": "GET"})
    return hits_response(count_hit(ROOT_COUNTER), media_type=preferred_type(request))


def hits_response(total: int, *, media_type: str) -> HttpResponse:
    """The total as the original answered it (`Hits: N`), or as `{"hits": N}`.

    Never stored by a cache (each answer is a new count), and it varies with Accept.
    """
    if media_type == JSON:
        response = HttpResponse(dumps({"hits": total}), content_type=JSON)
    else:
        response = HttpResponse(f"Hits: {total}", content_type=f"{TEXT}; charset=utf-8")
    response["Cache-Control"] = "no-store"
    response["Vary"] = "Accept"
    return response


def preferred_type(request: HttpRequest) -> str:
    """JSON when the client prefers it to text; text for anything else, as the original did."""
    return _preferred_type(request.META.get("HTTP_ACCEPT", "*/*"))


@functools.lru_cache(maxsize=64)
def _preferred_type(accept: str) -> str:
    # Clients send the same few Accept headers: parse each once, with Django's own negotiation.
    request = HttpRequest()
    request.META["HTTP_ACCEPT"] = accept
    return request.get_preferred_type([TEXT, JSON]) or TEXT
