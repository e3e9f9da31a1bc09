"""The language of the pages: Django's LocaleMiddleware, kept to the request it serves.

Pages and mails are translated (LANGUAGES, `locale/`); the API is not: its handler has no locale
middleware (API_MIDDLEWARE) and its fast paths none either, so API answers stay in LANGUAGE_CODE
whatever the caller's Accept-Language, and cost nothing for it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware import locale
from django.utils import translation


class LocaleMiddleware(locale.LocaleMiddleware):
    """Django's, choosing the language by Accept-Language, with three differences.

    Django's leaves the language it activated on the thread after the answer, so the next request
    the thread serves, an API call whose handler has no locale middleware, would answer in the
    last page's language (DRF's messages are translated): here the thread goes back to
    LANGUAGE_CODE once the page is answered. API paths are left in LANGUAGE_CODE here too, for
    when they pass through MIDDLEWARE (API_PATH_PREFIXES empty, Django's test client): an answer
    is never half English, half another language. And an answer marked `language_neutral` gets
    neither Content-Language nor `Vary: Accept-Language`, which would be untrue of it.
    """

    def __init__(self, get_response):
        super().__init__(get_response)
        self.api_prefixes = tuple(settings.API_PATH_PREFIXES)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.api_prefixes and request.path_info.startswith(self.api_prefixes):
            return self.get_response(request)
        try:
            return super().__call__(request)
        finally:
            translation.deactivate()

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if getattr(response, "language_neutral", False):
            return response
        return super().process_response(request, response)


def language_neutral(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For a view whose answers are the same in every language (`GET /`'s `Hits: N`): they say so,
    and the locale middleware leaves their headers alone, as the view's WSGI fast path does."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response.language_neutral = True
        return response

    return wrapper
