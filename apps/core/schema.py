"""Generating the OpenAPI schema: the project's AutoSchema, and the preprocessing hook that first
makes the views' annotations and every app's `schema.py` known to drf-spectacular.

Loaded only by what generates a schema (GET /api/schema/, `manage.py spectacular`, the deploy
check): drf-spectacular's generator is a large import that no other request needs.
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.utils.module_loading import autodiscover_modules
from drf_spectacular import openapi
from rest_framework import serializers

from .openapi import apply_annotations


def prepare_views(endpoints: list) -> list:
    """drf-spectacular preprocessing hook, the first: each app's `schema.py` (its authentication
    extensions, its own hooks) is loaded, and the views' `extend_schema` annotations applied,
    before the generator reads them."""
    autodiscover_modules("schema")
    apply_annotations()
    return endpoints


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
