"""`POST /actions/<module>/<action>`: one plain view for every action.

A plain Django view rather than a DRF APIView: an action call needs a bearer check, a JSON body
and a serializer, and DRF's per-request view machinery (content negotiation, parsers, throttles)
would only add time to the hot path. Errors become problem+json through apps.core.problems.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from apps.accounts.api_keys import Caller
from apps.core.json import json_response
from apps.core.parsers import read_json
from apps.core.problems import problem_for_exception, server_error

from .exceptions import (
    MalformedInput,
    MethodNotAllowed,
    UnsupportedMediaType,
)
from .services import authenticate_bearer, find_action, find_module, run_action, validate_input

JSON = "application/json"


@csrf_exempt  # called by services with a bearer key, never with a browser's cookies
def call(request: HttpRequest, module: str, action: str) -> HttpResponse:
    """Run one action with the JSON object in the body; answer its result as JSON."""
    try:
        _require_post(request)
        caller = authenticate(request)
        found = find_action(caller=caller, module=module, action=action)
        result = run_action(found, validate_input(found, read_json_object(request)))
    except Exception as exc:
        return _error(exc)
    return json_response(result)


@csrf_exempt
def ping(request: HttpRequest, module: str) -> HttpResponse:
    """The module's ping, as in the original: `true` when it exists and the key may call it."""
    try:
        _require_post(request)
        find_module(caller=authenticate(request), module=module)
    except Exception as exc:
        return _error(exc)
    return json_response(True)


def authenticate(request: HttpRequest) -> Caller:
    """The API client named by `Authorization: Bearer <key>`; 401 otherwise."""
    return authenticate_bearer(request.headers.get("Authorization"))


def read_json_object(request: HttpRequest) -> dict:
    """The body as a JSON object, refusing other media types and bodies over the limit.

    The declared Content-Length is checked before anything is read, so an oversized body is
    refused without being read into memory.
    """
    if request.content_type != JSON:
        raise UnsupportedMediaType()
    try:
        payload = read_json(
            request,
            declared_length=request.META.get("CONTENT_LENGTH"),
            limit=settings.ACTIONS_MAX_BODY,
        )
    except ValueError as exc:  # includes JSONDecodeError, UnicodeDecodeError, a bad length
        raise MalformedInput(f"The body is not valid JSON: {exc}.") from None
    if not isinstance(payload, dict):
        raise MalformedInput("The body must be a JSON object.")
    return payload


def _require_post(request: HttpRequest) -> None:
    if request.method != "POST":
        raise MethodNotAllowed()


def _error(exc: Exception) -> HttpResponse:
    response = problem_for_exception(exc)
    return response if response is not None else server_error(exc)
