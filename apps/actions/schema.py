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
from drf_spectacular.utils import OpenApiResponse, extend_schema
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
    502,
    504,
    s400="The body is not a JSON object, or the input is not valid (`errors` per field).",
    s409="The change conflicts with existing data; rolled back.",
    s413="The body is larger than ACTIONS_MAX_BODY.",
    s415="The body is not application/json.",
    s502="An upstream service the action calls failed.",
    s504="An upstream service the action calls was too slow.",
)


def _schema_view(*, operation_id: str, tag: str, summary: str, description: str, request, ok):
    errors = CALL_ERRORS if request is not None else {}

    @extend_schema(
        operation_id=operation_id,
        tags=[tag],
        summary=summary,
        description=description,
        request=request,
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


def add_action_endpoints(endpoints: list) -> list:
    """drf-spectacular preprocessing hook: add every module's ping and every action."""
    added = []
    for module in sorted(registry.modules.values(), key=lambda m: m.name):
        path = f"/actions/{module.name}/"
        added.append((path, f"^{re.escape(path)}$", "POST", _ping_view(module)))
        for action in sorted(module.actions.values(), key=lambda a: a.name):
            path = f"/actions/{module.name}/{action.name}"
            added.append((path, f"^{re.escape(path)}$", "POST", _action_view(action)))
    return [*endpoints, *added]
