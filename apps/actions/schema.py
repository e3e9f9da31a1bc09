"""The actions in the OpenAPI schema: one path per registered action.

The dispatch view is a plain Django view that drf-spectacular cannot see, so a preprocessing
hook (SPECTACULAR_SETTINGS["PREPROCESSING_HOOKS"]) adds, for each action, an endpoint described
by a small APIView whose only purpose is the schema: the action's serializer as the request
body, its output serializer (when it has one) as the answer, and every error it can give.
"""

from __future__ import annotations

import re

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from apps.core.openapi import problem_responses
from apps.core.serializers import StringField

from .idempotency import KEY
from .registry import Action, Module, registry

# The Idempotency-Key header's form, as the pipeline checks it (idempotency.KEY).
IDEMPOTENCY_KEY_PATTERN = f"^{KEY.pattern}$"


class ApiKeyAuthentication(BaseAuthentication):
    """Documents the bearer key of action calls; the dispatch view checks it itself."""

    def authenticate(self, request):
        return None

    def authenticate_header(self, request):
        return "Bearer"


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API client key: `Authorization: Bearer <key>`.",
        }


COMMON_ERRORS = problem_responses(
    401,
    403,
    404,
    405,
    500,
    503,
    s401="No key, or an unknown or revoked key.",
    s403="The key may not call this module.",
    s404="No such module or action.",
    s405="Actions are called with POST.",
    s500="A failure of the server; the request id is given.",
    s503="The database did not answer; nothing was changed. Retry after `Retry-After` seconds.",
)
CALL_ERRORS = problem_responses(
    400,
    409,
    413,
    415,
    422,
    429,
    502,
    504,
    s400="The body is not a JSON object, the input is not valid (`errors` per field), or the "
    "Idempotency-Key is not 1 to 255 printable ASCII characters.",
    s409="The change conflicts with existing data (rolled back), or a call with this "
    "Idempotency-Key is still running (`/problems/idempotency-key-in-flight`, retry shortly).",
    s413="The body is larger than ACTIONS_MAX_BODY.",
    s415="The body is not application/json.",
    s422="This Idempotency-Key was used for another call (`/problems/idempotency-key-reused`).",
    s429="Over the client's rate (`/problems/rate-limited`): retry after `Retry-After` seconds.",
    s502="An upstream service the action calls failed.",
    s504="A statement ran past the action's timeout (`/problems/statement-timeout`, rolled "
    "back), or an upstream service the action calls was too slow.",
)
# The answers of a call counted against its client's rate: each carries the RateLimit headers,
# a problem as much as a result (apps.actions.pipeline). 401, 403, 404 and 405 come before the
# count: no client is known, or nothing it may call was named.
COUNTED = [200, 400, 409, 413, 415, 422, 429, 500, 502, 503, 504]
COUNTED_NOTE = (
    "Sent to clients with a rate (their own, or ACTIONS_DEFAULT_RATE) with every answer once "
    "the call was counted, problems included: all but 401, 403, 404 and 405, which come before "
    "the count (no client known, or nothing it may call named), and a batch's 400 for a body "
    "that is not a list of calls."
)
# What a caller may send with a call or a batch, and what comes back with the answer.
CALL_HEADERS = [
    OpenApiParameter(
        "Idempotency-Key",
        {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
        OpenApiParameter.HEADER,
        description="1 to 255 printable ASCII characters: the call runs once for this key; a "
        "repeat gets the first answer (`Idempotent-Replayed: true`).",
    ),
    OpenApiParameter(
        "Prefer",
        str,
        OpenApiParameter.HEADER,
        description="`tx=rollback`: run, answer, and roll everything back (a dry run).",
    ),
    OpenApiParameter(
        "Idempotent-Replayed",
        str,
        OpenApiParameter.HEADER,
        response=[200],
        description="`true` on the answer kept for an Idempotency-Key.",
    ),
    OpenApiParameter(
        "Preference-Applied",
        str,
        OpenApiParameter.HEADER,
        response=[200],
        description="`tx=rollback` on a dry run's answer.",
    ),
    OpenApiParameter(
        "RateLimit-Policy",
        str,
        OpenApiParameter.HEADER,
        response=COUNTED,
        description='The client\'s rate, e.g. `"client";q=100;w=1`. ' + COUNTED_NOTE,
    ),
    OpenApiParameter(
        "RateLimit",
        str,
        OpenApiParameter.HEADER,
        response=COUNTED,
        description='Calls left and seconds until one more, e.g. `"client";r=99;t=1`. '
        + COUNTED_NOTE,
    ),
]


def _schema_view(
    *,
    operation_id: str,
    tag: str,
    summary: str,
    description: str,
    request,
    ok,
    parameters: list[OpenApiParameter] = (),
):
    errors = CALL_ERRORS if request is not None else {}

    @extend_schema(
        operation_id=operation_id,
        tags=[tag],
        summary=summary,
        description=description,
        request=request,
        parameters=list(parameters),
        responses={200: ok, **dict(sorted({**COMMON_ERRORS, **errors}.items()))},
    )
    def post(self, request, *args, **kwargs):  # pragma: no cover - never routed
        raise NotImplementedError("schema only")

    view = type(
        f"{operation_id}_schema",
        (APIView,),
        {
            "post": post,
            "authentication_classes": [ApiKeyAuthentication],
            "permission_classes": [IsAuthenticated],  # so the schema marks the key required
        },
    )
    return view.as_view()


def _action_view(action: Action):
    ok = OpenApiResponse(
        response=action.output(many=action.many) if action.output else OpenApiTypes.ANY,
        description="The action's result as JSON; asked for `application/x-ndjson` (Accept), "
        "one JSON value a line, streamed as it is read (the rows of an iterator from a "
        'server-side cursor), a last line `{"error": <problem>}` if it fails midway.',
    )
    return _schema_view(
        operation_id=f"{action.module}_{action.name}",
        tag=action.module,
        summary=action.summary or f"{action.module}.{action.name}",
        description=action.description,
        request=action.input,
        ok=ok,
        parameters=CALL_HEADERS,
    )


def _ping_view(module: Module):
    return _schema_view(
        operation_id=f"{module.name}_ping",
        tag=module.name,
        summary=f"Ping the {module.name} module",
        description="Answers `true` when the module exists and the key may call it.",
        request=None,
        ok=OpenApiResponse(response=OpenApiTypes.BOOL, description="Always `true`."),
    )


class BatchCallSerializer(serializers.Serializer):
    module = StringField(help_text="The action module, e.g. `example`.")
    action = StringField(help_text="The action in that module, e.g. `bar`.")
    input = serializers.DictField(required=False, help_text="The action's input (default {}).")


class BatchSerializer(serializers.Serializer):
    calls = serializers.ListField(
        child=BatchCallSerializer(),
        min_length=1,
        max_length=settings.ACTIONS_MAX_BATCH,
        help_text="At most ACTIONS_MAX_BATCH, run in order.",
    )


class BatchResultsSerializer(serializers.Serializer):
    results = serializers.ListField(
        child=serializers.JSONField(), help_text="Each call's result, in the calls' order."
    )


def _batch_view():
    return _schema_view(
        operation_id="actions_batch",
        tag="batch",
        summary="Run several calls in one transaction: all of them, or none",
        description="Each call is validated, authorised and rate-counted as a single call. When "
        "one fails nothing is committed, and the answer is that call's problem with `index`, "
        "its place in the batch. A batch whose calls run on several databases is a 400 "
        "(`/problems/batch-spans-databases`) unless ACTIONS_BATCH_MULTI_DB allows it.",
        request=BatchSerializer,
        ok=OpenApiResponse(response=BatchResultsSerializer, description="Every call's result."),
        parameters=CALL_HEADERS,
    )


def add_action_endpoints(endpoints: list) -> list:
    """drf-spectacular preprocessing hook: add the batch, every module's ping and every action."""
    added = [("/actions/batch", "^/actions/batch$", "POST", _batch_view())]
    for module in sorted(registry.modules.values(), key=lambda m: m.name):
        path = f"/actions/{module.name}/"
        added.append((path, f"^{re.escape(path)}$", "POST", _ping_view(module)))
        for action in sorted(module.actions.values(), key=lambda a: a.name):
            path = f"/actions/{module.name}/{action.name}"
            added.append((path, f"^{re.escape(path)}$", "POST", _action_view(action)))
    return [*endpoints, *added]
