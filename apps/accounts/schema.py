"""User tokens in the OpenAPI schema (loaded when a schema is generated: apps.core.schema)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from .tokens import USER_TOKEN_SCHEME, UserTokenAuthentication


class UserTokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes user tokens."""

    target_class = UserTokenAuthentication
    match_subclasses = True
    name = USER_TOKEN_SCHEME

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A user token from POST /api/v1/auth/token.",
        }
