"""How the OpenAPI schema describes problem+json errors, for views to list what they can answer."""

from __future__ import annotations

from http import HTTPStatus

from django.core.validators import RegexValidator
from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from .problems import PROBLEM_CONTENT_TYPE
from .serializers import ProblemSerializer


def problem_responses(*statuses: int, **descriptions: str) -> dict:
    """`extend_schema(responses=…)` entries: each status answered with a problem+json body,
    described by the HTTP reason phrase or by `descriptions` (`s409="…"`)."""
    return {
        (status, PROBLEM_CONTENT_TYPE): OpenApiResponse(
            response=ProblemSerializer,
            description=descriptions.get(f"s{status}") or HTTPStatus(status).phrase,
        )
        for status in statuses
    }


# What DRF's CharField refuses that a bare `type: string` allows: a NUL character (PostgreSQL
# cannot store it), and, when it trims spaces and refuses blanks, a string of spaces only.
NO_NUL = r"^[^\u0000]*$"
NOT_BLANK = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's, saying of request strings all that DRF checks of them: a string that
    may not be blank has `minLength: 1`, and a `pattern` refuses what the field refuses (a NUL
    character; a string of spaces where spaces are trimmed), so that the document and the
    validation agree."""

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and schema.get("type") == "string"
            and "enum" not in schema
        ):
            if not field.allow_blank:
                schema.setdefault("minLength", 1)
            if "pattern" not in schema:
                schema["pattern"] = _pattern(field)
        return schema


def _pattern(field: serializers.CharField) -> str:
    """The field's own RegexValidator's pattern, or what a CharField refuses anyway."""
    for validator in field.validators:
        if isinstance(validator, RegexValidator) and not validator.inverse_match:
            return validator.regex.pattern
    return NOT_BLANK if field.trim_whitespace and not field.allow_blank else NO_NUL
