"""The actions in the OpenAPI schema: one path per registered action.

The dispatch view is a plain Django view that drf-spectacular cannot see, so a preprocessing
hook (SPECTACULAR_SETTINGS["PREPROCESSING_HOOKS"]) adds, for each action, an endpoint described
by a small APIView whose only purpose is the schema: the action's serializer as the request
body, its output serializer (when it has one) as the answer, and every error it can give.
"""

from __future__ import annotations

import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from apps.core.openapi import problem_responses

from .registry import Action, Module, registry


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
# What a caller may send with a call or a batch, and what comes back with the answer.
CALL_HEADERS = [
    OpenApiParameter(
        "Idempotency-Key",
        str,
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
        response=[200, 429],
        description='The client\'s rate, e.g. `"client";q=100;w=1` (rate-limited clients).',
    ),
    OpenApiParameter(
        "RateLimit",
        str,
        OpenApiParameter.HEADER,
        response=[200, 429],
        description='Calls left and seconds until one more, e.g. `"client";r=99;t=1`.',
    ),
]
STREAM_HEADER = OpenApiParameter(
    "Accept",
    str,
    OpenApiParameter.HEADER,
    description="`application/x-ndjson`: the result one JSON value a line, streamed as it is "
    "read (rows of an iterator from a server-side cursor).",
)


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
        description="The action's result as JSON.",
    )
    return _schema_view(
        operation_id=f"{action.module}_{action.name}",
        tag=action.module,
        summary=action.summary or f"{action.module}.{action.name}",
        description=action.description,
        request=action.input,
        ok=ok,
        parameters=[*CALL_HEADERS, STREAM_HEADER],
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
    module = serializers.CharField(help_text="The action module, e.g. `example`.")
    action = serializers.CharField(help_text="The action in that module, e.g. `bar`.")
    input = serializers.DictField(required=False, help_text="The action's input (default {}).")


class BatchSerializer(serializers.Serializer):
    calls = BatchCallSerializer(many=True, help_text="At most ACTIONS_MAX_BATCH, run in order.")


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
